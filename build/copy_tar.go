package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/opencontainers/go-digest"
	"go.podman.io/storage/pkg/archive"
)

// tarSource streams a file or directory as a tar archive whose entries are named for the
// destination: a file as name, a directory's contents at the top.
func (p copyPlan) tarSource(ctx context.Context, s source, name string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := p.src.walk(ctx, s, func(e entry) error {
			if e.name == "" {
				e.name = name // a file source, followed if it is a symlink, as Docker does
			}
			return p.writeEntry(tw, e)
		})
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// writeEntry adds one file, directory or symlink with the copy's owner and mode.
func (p copyPlan) writeEntry(tw *tar.Writer, e entry) error {
	kind, err := entryKind(e)
	if err != nil {
		return err
	}
	link := ""
	if kind == 'l' {
		if link, err = os.Readlink(e.host); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(e.fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", e.host, err)
	}
	hdr.Name, hdr.Uname, hdr.Gname = e.name, "", ""
	hdr.Uid, hdr.Gid = p.owner.uid, p.owner.gid
	hdr.Format = tar.FormatPAX
	if kind == 'd' {
		hdr.Name += "/"
	}
	if p.mode != nil && kind != 'l' {
		hdr.Mode = int64(*p.mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if kind != 'f' {
		return nil
	}
	f, err := os.Open(e.host)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = copyData(tw, f)
	return err
}

// mkdirAllInRoot creates dir and its parents inside root without following any symlink
// out of it.
func mkdirAllInRoot(root, dir string) error {
	return pathrs.MkdirAll(root, dir, 0o755)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// isArchive reports whether a file is a (possibly compressed) tar archive.
func isArchive(host string) bool {
	return archive.IsArchivePath(host)
}

// fetchURL downloads an ADD source into a temporary file; like Docker, the file gets mode
// 0600 and the server's Last-Modified time, and is never unpacked. With a checksum
// (ADD --checksum), content with another digest is an error.
func fetchURL(ctx context.Context, raw, checksum string) (source, func(), error) {
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, nil, fmt.Errorf("add %s: %w", raw, err)
	}
	var want digest.Digest
	if checksum != "" {
		if want, err = parseChecksum(checksum); err != nil {
			return source{}, nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return source{}, nil, fmt.Errorf("add %s: %w", raw, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return source{}, nil, fmt.Errorf("add %s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return source{}, nil, fmt.Errorf("add %s: %s", raw, resp.Status)
	}
	dir, err := os.MkdirTemp("", "forge-add-")
	if err != nil {
		return source{}, nil, err
	}
	done := func() { os.RemoveAll(dir) }
	name := urlFileName(u, resp.Header.Get("Content-Disposition"))
	host := filepath.Join(dir, "download")
	f, err := os.OpenFile(host, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return source{}, done, err
	}
	algorithm := digest.Canonical
	if want != "" {
		algorithm = want.Algorithm()
	}
	digester := algorithm.Digester()
	_, err = io.Copy(io.MultiWriter(f, digester.Hash()), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return source{}, done, fmt.Errorf("add %s: %w", raw, err)
	}
	if got := digester.Digest(); want != "" && got != want {
		return source{}, done, fmt.Errorf("add %s: %w: want %s, got %s", raw, ErrChecksum, want, got)
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		_ = os.Chtimes(host, t, t)
	} else {
		_ = os.Chtimes(host, time.Unix(0, 0), time.Unix(0, 0))
	}
	return source{host: host, name: name}, done, nil
}

// ErrChecksum is returned when a download does not have the digest ADD --checksum names.
var ErrChecksum = errors.New("checksum mismatch")

// parseChecksum reads the value of ADD --checksum: ALGORITHM:HEX with a digest algorithm
// this build has (sha256, sha384, sha512).
func parseChecksum(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("--checksum=%s: want sha256:<64 hex digits>: %w", s, err)
	}
	return d, nil
}

// writeInline writes the heredoc files of a COPY or ADD to a temporary directory, with
// mode 0644 and a zero modification time, and returns them as sources.
func writeInline(files []InlineFile) ([]source, func(), error) {
	dir, err := os.MkdirTemp("", "forge-heredoc-")
	if err != nil {
		return nil, nil, err
	}
	done := func() { os.RemoveAll(dir) }
	var out []source
	for i, f := range files {
		name := path.Base(path.Clean("/" + f.Name))
		if name == "/" || name == "." {
			return nil, done, fmt.Errorf("heredoc %q: not a file name", f.Name)
		}
		host := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(host, []byte(f.Data), 0o644); err != nil {
			return nil, done, err
		}
		if err := os.Chmod(host, 0o644); err != nil { // whatever the umask
			return nil, done, err
		}
		if err := os.Chtimes(host, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
			return nil, done, err
		}
		out = append(out, source{host: host, name: name, regular: true})
	}
	return out, done, nil
}

// urlFileName picks the file name for a download: the server's, or the URL path's last part.
func urlFileName(u *url.URL, disposition string) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if n := path.Base(params["filename"]); n != "" && n != "." && n != "/" {
			return n
		}
	}
	if n := path.Base(u.Path); n != "" && n != "." && n != "/" {
		return n
	}
	return "download"
}
