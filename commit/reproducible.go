package commit

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// A reproducible layer depends only on the files it holds, never on when or where it was
// made. With a fixed timestamp (--timestamp, SOURCE_DATE_EPOCH) a commit rewrites its layer
// tar before storing it:
//
//   - every entry's modification time is set to the timestamp (as Buildah's --timestamp
//     does, rather than clamped as BuildKit's rewrite-timestamp does: a file copied from a
//     build context keeps no trace of when the context was checked out);
//   - access and change times are dropped, and so are owner names (uname, gname): the
//     numeric IDs stay, the names are the build host's;
//   - entries are sorted by name, and the first name of a hard-linked file carries its
//     contents, the others link to it;
//   - PAX records other than extended attributes are dropped.
//
// The tar is spooled to a file first: sorting needs all the headers before the first
// entry can be written.

// putReproducible returns the putFunc of a commit with timestamp ts: the tar, spooled
// to a file unless it is one already, is written again by reproducibleTar as it is stored.
func putReproducible(ts time.Time) putFunc {
	return func(ctx context.Context, st cstorage.Store, parent string, r io.Reader) (*cstorage.Layer, error) {
		f, ok := r.(*os.File)
		if !ok {
			var err error
			if f, err = spoolTar(ctx, r); err != nil {
				return nil, err
			}
			defer f.Close()
		}
		return putRewritten(ctx, st, parent, f, ts)
	}
}

// spoolTar copies a tar stream to an unlinked temporary file.
func spoolTar(ctx context.Context, r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "forge-layer-*.tar")
	if err != nil {
		return nil, fmt.Errorf("stage layer: %w", err)
	}
	err = os.Remove(f.Name())
	if err == nil {
		_, err = io.Copy(f, storage.ContextReader(ctx, r))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stage layer: %w", err)
	}
	return f, nil
}

// putRewritten stores the tar in f, rewritten by reproducibleTar, as a layer on parent.
func putRewritten(ctx context.Context, st cstorage.Store, parent string, f io.ReaderAt, ts time.Time) (*cstorage.Layer, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(reproducibleTar(ctx, f, pw, ts))
	}()
	layer, _, err := st.PutLayer("", parent, nil, "", false, nil, pr)
	// Unblock the writer if the store stopped early, and wait: it reads f, which the
	// caller closes.
	pr.CloseWithError(errors.New("layer store stopped reading"))
	<-done
	if err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	return layer, nil
}

// spooledEntry is one entry of a spooled tar: its header and where its contents are.
type spooledEntry struct {
	hdr    *tar.Header
	offset int64
}

// reproducibleTar writes the tar read from src to w with fixed times, no host details and
// its entries sorted (see the comment at the top of this file).
func reproducibleTar(ctx context.Context, src io.ReaderAt, w io.Writer, ts time.Time) error {
	entries, err := readEntries(src)
	if err != nil {
		return err
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	relink(entries)
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := normalHeader(e.hdr, ts)
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("rewrite layer: %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if _, err := io.Copy(tw, io.NewSectionReader(src, e.offset, hdr.Size)); err != nil {
				return fmt.Errorf("rewrite layer: %s: %w", hdr.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("rewrite layer: %w", err)
	}
	return nil
}

// readEntries reads every header of the tar and the offset of each entry's contents. A
// name that appears twice is refused: a layer's diff has each name once, and with two
// the sorted order could not say which one a hard link names.
func readEntries(src io.ReaderAt) ([]spooledEntry, error) {
	cr := &countingReader{r: io.NewSectionReader(src, 0, 1<<62)}
	tr := tar.NewReader(cr)
	var entries []spooledEntry
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		if isSparse(hdr) {
			return nil, fmt.Errorf("read layer: %s: sparse files are not supported", hdr.Name)
		}
		name := path.Clean(hdr.Name)
		if seen[name] {
			return nil, fmt.Errorf("read layer: %s: the name appears twice", hdr.Name)
		}
		seen[name] = true
		entries = append(entries, spooledEntry{hdr: hdr, offset: cr.n})
	}
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// relink makes the first name (in the sorted order) of each hard-linked file the one
// that carries its contents and the others links to it, so that no link comes before the
// file it names. A link to a name that is itself a link here names the same file: it is
// followed to the end of the chain. A link to a file not in this tar (in a layer below)
// keeps naming it, directly.
func relink(entries []spooledEntry) {
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.hdr.Name] = i
	}
	// final follows a chain of links to the name that holds the file; false for a cycle.
	final := func(name string) (string, bool) {
		for range len(entries) + 1 {
			i, ok := index[name]
			if !ok || entries[i].hdr.Typeflag != tar.TypeLink {
				return name, true
			}
			name = entries[i].hdr.Linkname
		}
		return "", false
	}
	groups := map[int][]int{} // the file's entry -> its links' entries
	for i, e := range entries {
		if e.hdr.Typeflag != tar.TypeLink {
			continue
		}
		target, ok := final(e.hdr.Linkname)
		if !ok {
			continue
		}
		file, here := index[target]
		if !here {
			if target != e.hdr.Linkname {
				link := cloneHeader(e.hdr)
				link.Linkname = target
				entries[i].hdr = link
			}
			continue
		}
		// The target may be any non-directory: the store writes a second name of a
		// symlink, device or FIFO as a hard link too.
		if entries[file].hdr.Typeflag == tar.TypeDir {
			continue
		}
		groups[file] = append(groups[file], i)
	}
	for file, links := range groups {
		members := append(links, file)
		sort.Ints(members)
		fileHdr, offset := entries[file].hdr, entries[file].offset
		holder := cloneHeader(fileHdr)
		holder.Name = entries[members[0]].hdr.Name
		for _, m := range members[1:] {
			link := cloneHeader(fileHdr)
			link.Name, link.Typeflag, link.Linkname, link.Size = entries[m].hdr.Name, tar.TypeLink, holder.Name, 0
			entries[m].hdr = link
		}
		entries[members[0]] = spooledEntry{hdr: holder, offset: offset}
	}
}

func cloneHeader(h *tar.Header) *tar.Header {
	c := *h
	return &c
}

// normalHeader is hdr with the timestamp, without host details and PAX records other
// than extended attributes.
func normalHeader(hdr *tar.Header, ts time.Time) *tar.Header {
	out := &tar.Header{
		Typeflag: hdr.Typeflag, Name: hdr.Name, Linkname: hdr.Linkname, Size: hdr.Size,
		Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: ts.UTC().Truncate(time.Second),
		Devmajor: hdr.Devmajor, Devminor: hdr.Devminor,
	}
	if out.Typeflag != tar.TypeReg {
		out.Size = 0
	}
	if out.Typeflag != tar.TypeLink && out.Typeflag != tar.TypeSymlink {
		// Overlay's whiteouts share one inode, and the store's tar writer names the
		// first as the "link" of the others even though they are plain files.
		out.Linkname = ""
	}
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if out.PAXRecords == nil {
				out.PAXRecords = map[string]string{}
			}
			out.PAXRecords[k] = v
		}
	}
	return out
}

// countingReader counts the bytes read through it: after tar.Reader.Next, the offset of
// the entry's contents.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
