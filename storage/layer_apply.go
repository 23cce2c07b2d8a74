package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
	cstorage "go.podman.io/storage"
)

// ApplyStagedLayer gives the store a staged layer, as the store's ApplyStagedLayer does,
// but writes the layer's tar-split data itself. The store compresses it with a parallel
// gzip writer that allocates new 1 MiB buffers for every layer: after unpacking a large
// build context that was the largest part of forge's memory, and for a small layer most
// of the work of storing it. Here one small compressor does it.
//
// The file goes where the store reads it (tarSplitPath) before the layer is recorded, as
// the store itself writes it before it marks the layer complete, but without the store's
// lock: if it is gone once the layer is recorded (another process's garbage collection
// took it as an orphan meanwhile) it is written again, and a failure removes it only if
// it is still the file written here. o.ID must be set (without one, the store writes the
// data itself) and should not name a layer the store has. Like the store's, it closes
// o.DiffOutput.TarSplit and leaves it nil.
func ApplyStagedLayer(st cstorage.Store, o cstorage.ApplyStagedLayerOptions) (*cstorage.Layer, error) {
	ts := o.DiffOutput.TarSplit
	if ts == nil || o.ID == "" {
		return st.ApplyStagedLayer(o)
	}
	defer ts.Close()
	o.DiffOutput.TarSplit = nil
	path := tarSplitPath(st, o.ID)
	written, err := writeTarSplit(ts, path)
	if err != nil {
		return nil, fmt.Errorf("store layer %s: tar-split data: %w", o.ID, err)
	}
	layer, err := st.ApplyStagedLayer(o)
	if err != nil {
		if now, serr := os.Lstat(path); serr == nil && os.SameFile(now, written) {
			os.Remove(path)
		}
		return nil, err
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := writeTarSplit(ts, path); err != nil {
			// A layer without it would give pushes another digest: not kept.
			return nil, errors.Join(fmt.Errorf("store layer %s: tar-split data: %w", o.ID, err), st.DeleteLayer(o.ID))
		}
	}
	return layer, nil
}

// tarSplitPath is where the store keeps a layer's tar-split data, from which it gives
// the layer's tar stream back byte for byte (a layer without one gets a tar made anew
// from its files, with another digest).
func tarSplitPath(st cstorage.Store, id string) string {
	return filepath.Join(st.GraphRoot(), st.GraphDriverName()+"-layers", id+".tar-split.gz")
}

// writeTarSplit compresses the tar-split data in ts (from its start) into path, through
// a temporary file renamed into place, and returns what it wrote.
func writeTarSplit(ts *os.File, path string) (_ fs.FileInfo, retErr error) {
	if _, err := ts.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".tmp-tar-split-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	buf := bufio.NewWriterSize(f, 64<<10)
	zw, err := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, ts); err != nil {
		return nil, err
	}
	if err := errors.Join(zw.Close(), buf.Flush(), f.Chmod(0o600)); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return fi, os.Rename(f.Name(), path)
}
