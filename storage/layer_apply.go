package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
	cstorage "go.podman.io/storage"
)

// ApplyStagedLayer gives the store a staged layer, as the store's ApplyStagedLayer does,
// but writes the layer's tar-split data itself. The store compresses it with a parallel
// gzip writer that allocates new 1 MiB blocks for every layer, several at a time: after
// unpacking a large build context that was the largest part of forge's memory, and for a
// small layer most of the work of storing it. Here one small compressor does it.
//
// The file goes where the store reads it (tarSplitPath), before the layer is recorded, so
// that no reader finds the layer without it; when recording the layer fails, the store
// removes it with the rest of the layer, or this does. o.ID must be set, and must not
// name a layer the store has. Like the store's, it closes o.DiffOutput.TarSplit and
// leaves it nil.
func ApplyStagedLayer(st cstorage.Store, o cstorage.ApplyStagedLayerOptions) (*cstorage.Layer, error) {
	ts := o.DiffOutput.TarSplit
	if ts == nil || o.ID == "" {
		return st.ApplyStagedLayer(o)
	}
	o.DiffOutput.TarSplit = nil
	path := tarSplitPath(st, o.ID)
	err := writeTarSplit(ts, path)
	ts.Close()
	if err != nil {
		return nil, fmt.Errorf("store layer %s: tar-split data: %w", o.ID, err)
	}
	layer, err := st.ApplyStagedLayer(o)
	if err != nil {
		if _, lerr := st.Layer(o.ID); lerr != nil {
			os.Remove(path)
		}
		return nil, err
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
// a temporary file renamed into place.
func writeTarSplit(ts *os.File, path string) (retErr error) {
	if _, err := ts.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-tar-split-*")
	if err != nil {
		return err
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
		return err
	}
	if _, err := io.Copy(zw, ts); err != nil {
		return err
	}
	if err := errors.Join(zw.Close(), buf.Flush(), f.Chmod(0o600)); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
