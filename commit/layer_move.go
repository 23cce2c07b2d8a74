package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	cstorage "go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/stringid"

	"github.com/forge-build/forge/storage"
)

// moveLayer stores the container's changes as a new layer without copying them: the
// container layer's directory of changes (overlay's upper directory) is renamed into the
// new layer, which then sits on the container's parent layer, and the container is left
// with an empty one. The diff is read once, to learn its digest and to record the
// tar-split data from which pushes later reproduce the same bytes.
//
// moved is false, with no error and nothing changed, when the driver cannot take a
// directory (vfs) or the container is mounted; the caller then copies the diff. A
// container made from an image with an empty directory of changes gives no layer (nil,
// true). After a failure past the rename the container's changes may be gone: only
// callers that remove the container anyway use this.
func moveLayer(ctx context.Context, s *storage.Store, c *storage.Container) (layer *cstorage.Layer, moved bool, retErr error) {
	st := s.Storage()
	if !canMove(st) {
		return nil, false, nil
	}
	if n, err := st.Mounted(c.ID); err != nil || n > 0 {
		return nil, false, nil
	}
	src, err := st.DifferTarget(c.LayerID)
	if err != nil {
		return nil, false, nil // not a driver that can stage directories
	}
	if c.FromImageID != "" {
		// Every entry of an overlay upper directory is a change (the store's own
		// change list walks all of it to say so).
		empty, err := emptyDir(src)
		if err != nil {
			return nil, true, fmt.Errorf("list changes: %w", err)
		}
		if empty {
			return nil, true, nil
		}
	}
	desc, err := describeDiff(ctx, st, c.ParentLayer, c.LayerID)
	if err != nil {
		return nil, false, err
	}
	m := &moveDiffer{src: src, out: desc}
	out, err := st.PrepareStagedLayer(nil, m)
	if err != nil {
		desc.TarSplit.Close()
		if out != nil && out.Target != "" {
			m.restore(out.Target)
			err = errors.Join(err, st.CleanupStagedLayer(out))
		}
		if !m.renamed {
			// Nothing moved (no staging support, a staging directory on another file
			// system, ...): the caller copies instead.
			return nil, false, nil
		}
		return nil, true, fmt.Errorf("stage layer: %w", err)
	}
	if err := ctx.Err(); err != nil {
		m.restore(out.Target)
		return nil, true, errors.Join(err, st.CleanupStagedLayer(out))
	}
	layer, err = storage.ApplyStagedLayer(st, cstorage.ApplyStagedLayerOptions{
		ID:          stringid.GenerateRandomID(),
		ParentLayer: c.ParentLayer,
		DiffOutput:  out,
	})
	if err != nil {
		if _, serr := os.Lstat(out.Target); serr == nil {
			// The store did not take the staging directory (or never got it).
			m.restore(out.Target)
			err = errors.Join(err, st.CleanupStagedLayer(out))
		}
		return nil, true, fmt.Errorf("store layer: %w", err)
	}
	return layer, true, nil
}

// describeDiff reads the diff between two layers once and returns what storage records
// for a layer with that content: digest and size of the uncompressed tar, the owners in
// it, and the tar-split data (in an unlinked temporary file the caller must close).
func describeDiff(ctx context.Context, st cstorage.Store, from, to string) (graphdriver.DriverWithDifferOutput, error) {
	rc, err := st.Diff(from, to, &cstorage.DiffOptions{Compression: new(archive.Uncompressed)})
	if err != nil {
		return graphdriver.DriverWithDifferOutput{}, fmt.Errorf("diff container layer: %w", err)
	}
	out, err := storage.DescribeTar(ctx, rc, 0, nil)
	if cerr := rc.Close(); err == nil && cerr != nil {
		out.TarSplit.Close()
		err = cerr
	}
	if err != nil {
		return out, fmt.Errorf("diff container layer: %w", err)
	}
	return out, nil
}

// emptyDir reports whether dir has no entries, reading at most one.
func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// moveDiffer is the storage "differ" that fills a staging directory by renaming the
// container's directory of changes into it, leaving an empty directory with the same
// mode and owner behind.
type moveDiffer struct {
	src     string
	out     graphdriver.DriverWithDifferOutput
	renamed bool
}

func (m *moveDiffer) ApplyDiff(dest string, _ *archive.TarOptions, _ *graphdriver.DifferOptions) (graphdriver.DriverWithDifferOutput, error) {
	fi, err := os.Lstat(m.src)
	if err != nil {
		return m.out, err
	}
	// The staging directory is new and empty: take its place.
	if err := os.Remove(dest); err != nil {
		return m.out, err
	}
	if err := os.Rename(m.src, dest); err != nil {
		return m.out, err
	}
	m.renamed = true
	mode := fi.Mode()
	m.out.RootDirMode = &mode
	if err := os.Mkdir(m.src, mode.Perm()); err != nil {
		return m.out, err
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(m.src, int(sys.Uid), int(sys.Gid)); err != nil {
			return m.out, err
		}
	}
	return m.out, os.Chmod(m.src, mode)
}

func (m *moveDiffer) Close() error { return nil }

// restore puts the changes back into the container after a failure before the new layer
// took them.
func (m *moveDiffer) restore(staged string) {
	if !m.renamed {
		return
	}
	if err := os.Remove(m.src); err == nil || errors.Is(err, fs.ErrNotExist) {
		if os.Rename(staged, m.src) == nil {
			m.renamed = false
		}
	}
}

// canMove reports whether the store's driver keeps a layer's changes as one directory
// that a later diff reads back as it is: overlay with its native diff (no redirect_dir,
// no metacopy), without composefs and without a separate image store (staging would be
// on another file system).
func canMove(st cstorage.Store) bool {
	if st.GraphDriverName() != "overlay" || st.ImageStore() != "" {
		return false
	}
	for _, o := range st.GraphOptions() {
		if k, v, _ := strings.Cut(strings.ToLower(o), "="); strings.HasSuffix(k, "use_composefs") && v != "false" {
			return false
		}
	}
	status, err := st.Status()
	if err != nil {
		return false
	}
	native, metacopy := false, true
	for _, kv := range status {
		switch kv[0] {
		case "Native Overlay Diff":
			native = kv[1] == "true"
		case "Using metacopy":
			metacopy = kv[1] != "false"
		}
	}
	return native && !metacopy
}
