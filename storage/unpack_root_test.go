package storage

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestChunkReader: what the unpacking thread reads through the read-ahead is the source,
// byte for byte, whatever the sizes of the reads on either side, and the source's error
// comes through after its data.
func TestChunkReader(t *testing.T) {
	data := make([]byte, 3*chunkSize+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, name := range []string{"whole", "one byte at a time"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(data)
			if name != "whole" {
				src = iotest.OneByteReader(src)
			}
			got, err := io.ReadAll(iotest.HalfReader(newChunkReader(src)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the %d of the source", len(got), len(data))
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		src := io.MultiReader(bytes.NewReader(data[:chunkSize+7]), iotest.ErrReader(boom))
		got, err := io.ReadAll(newChunkReader(src))
		if !errors.Is(err, boom) || !bytes.Equal(got, data[:chunkSize+7]) {
			t.Fatalf("read %d bytes and %v, want %d and %v", len(got), err, chunkSize+7, boom)
		}
	})
}
