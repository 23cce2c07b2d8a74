package storage

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"

	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	tsstorage "github.com/vbatts/tar-split/tar/storage"
	graphdriver "go.podman.io/storage/drivers"
	"golang.org/x/sys/unix"
)

// DescribeTar reads a layer's uncompressed tar stream once and returns what the store
// records for a layer with that content: the stream's digest and size, the owners in it
// and its tar-split data (in an unlinked temporary file the caller must close), from
// which a push later reproduces the same bytes. unpack, when not nil, gets the stream as
// it is read (to write the files somewhere); a layer that unpacks past limit (> 0) fails
// with ErrLayerTooLarge before unpack sees the part that passes it.
func DescribeTar(ctx context.Context, r io.Reader, limit int64, unpack func(io.Reader) error) (out graphdriver.DriverWithDifferOutput, retErr error) {
	ts, err := unlinkedTemp()
	if err != nil {
		return out, fmt.Errorf("stage layer: %w", err)
	}
	defer func() {
		if retErr != nil {
			ts.Close()
		}
	}()
	buf := bufio.NewWriter(ts)
	raw, packed, err := asm.NewInputTarStreamWithDone(ContextReader(ctx, r), tsstorage.NewJSONPacker(buf), nil)
	if err != nil {
		return out, err
	}
	packerDone := false
	defer func() {
		raw.Close() // ends the packer early on a failure
		if !packerDone {
			<-packed // it reads r: the caller may close r only once it has stopped
		}
	}()

	d := digest.Canonical.Digester()
	n := &CountWriter{}
	var owners tarOwners
	if unpack == nil {
		body := io.TeeReader(raw, io.MultiWriter(d.Hash(), n))
		owners = scanOwners(ctx, body, limit)
		if owners.err != nil {
			return out, owners.err
		}
	} else {
		// A second reader of the stream notes owners and sizes ahead of unpack: it sees
		// each chunk before unpack does, so a layer past the limit stops first.
		pr, pw := io.Pipe()
		done := make(chan tarOwners, 1)
		go func() {
			o := scanOwners(ctx, pr, limit)
			pr.CloseWithError(o.err)
			done <- o
		}()
		body := io.TeeReader(raw, io.MultiWriter(d.Hash(), n, pw))
		err := unpack(body)
		if err == nil {
			_, err = io.Copy(io.Discard, body) // the end-of-archive blocks count too
		}
		pw.CloseWithError(err)
		owners = <-done
		if errors.Is(owners.err, ErrLayerTooLarge) {
			return out, owners.err
		}
		if err != nil {
			return out, err
		}
		if owners.err != nil {
			return out, owners.err
		}
	}
	packerDone = true
	if err := <-packed; err != nil { // the tar-split data is complete only now
		return out, fmt.Errorf("record tar-split data: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return out, fmt.Errorf("stage layer: %w", err)
	}
	return graphdriver.DriverWithDifferOutput{
		Size:               n.n,
		UncompressedDigest: d.Digest(),
		UIDs:               owners.uids,
		GIDs:               owners.gids,
		RootDirMode:        owners.rootMode,
		TarSplit:           ts,
	}, nil
}

// unlinkedTemp opens a temporary file that has no name: O_TMPFILE where the file system
// has it (one operation instead of a create and an unlink), else a created file removed
// at once.
func unlinkedTemp() (*os.File, error) {
	dir := os.TempDir()
	if fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600); err == nil {
		return os.NewFile(uintptr(fd), dir+"/(tar-split)"), nil
	}
	f, err := os.CreateTemp(dir, "forge-tarsplit-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type tarOwners struct {
	uids, gids []uint32
	rootMode   *os.FileMode // the mode of the layer's own root entry ("./"), if it has one
	err        error
}

// maxTrailing is how much may follow a tar's end-of-archive blocks: tar pads its output
// to a record (10 KiB by default). More is refused, not stored: the tar-split data keeps
// every byte of it.
const maxTrailing = 1 << 20

// scanOwners reads a tar to the end of r for the owners of its entries, failing past
// limit (> 0) as LayerExpansion does.
func scanOwners(ctx context.Context, r io.Reader, limit int64) tarOwners {
	uids, gids := map[uint32]bool{}, map[uint32]bool{}
	var rootMode *os.FileMode
	_, err := scanTar(ctx, tar.NewReader(r), limit, func(h *tar.Header) {
		uids[uint32(h.Uid)], gids[uint32(h.Gid)] = true, true
		if h.Typeflag == tar.TypeDir && path.Clean("/"+h.Name) == "/" {
			m := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
			rootMode = &m
		}
	})
	if err == nil { // the end-of-archive blocks and any padding
		var n int64
		if n, err = io.Copy(io.Discard, io.LimitReader(r, maxTrailing+1)); err == nil && n > maxTrailing {
			err = fmt.Errorf("more than %s of data after the end of the archive", humanSize(maxTrailing))
		}
	}
	return tarOwners{uids: slices.Sorted(maps.Keys(uids)), gids: slices.Sorted(maps.Keys(gids)), rootMode: rootMode, err: err}
}

// ContextReader returns a reader that stops a long copy once ctx is cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// CountWriter counts the bytes written to it.
type CountWriter struct{ n int64 }

func (w *CountWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// N is the number of bytes written.
func (w *CountWriter) N() int64 { return w.n }
