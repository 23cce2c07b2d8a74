package storage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"slices"
	"testing"
)

// TestDescribeTar: the description of a layer keeps its root entry's mode (storage would
// give the staged directory its parent's otherwise) and refuses more than a record's
// padding after the end of the archive, which tar-split would store byte for byte.
func TestDescribeTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o1750, Uid: 7, Gid: 8},
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, Uid: 9, Gid: 8},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := buf.Bytes()

	out, err := DescribeTar(t.Context(), bytes.NewReader(layer), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.TarSplit.Close()
	if out.RootDirMode == nil || *out.RootDirMode != 0o750|os.ModeSticky {
		t.Errorf("root mode %v, want %v", out.RootDirMode, 0o750|os.ModeSticky)
	}
	if !slices.Equal(out.UIDs, []uint32{7, 9}) || !slices.Equal(out.GIDs, []uint32{8}) || out.Size != int64(len(layer)) {
		t.Errorf("uids %v gids %v size %d, want [7 9] [8] %d", out.UIDs, out.GIDs, out.Size, len(layer))
	}

	padded := append(slices.Clone(layer), make([]byte, 10240)...)
	if out, err := DescribeTar(t.Context(), bytes.NewReader(padded), 0, nil); err != nil {
		t.Errorf("a record's padding after the archive: %v", err)
	} else {
		out.TarSplit.Close()
	}
	trailing := io.MultiReader(bytes.NewReader(layer), bytes.NewReader(make([]byte, 2*maxTrailing)))
	if _, err := DescribeTar(t.Context(), trailing, 0, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err == nil {
		t.Error("2 MiB after the end of the archive were accepted")
	}
}
