// Package evil builds hostile container images in code, for the tests that check forge
// against them: tar layers whose entries try to leave the root (`..`, absolute names,
// symlinks and hard links that point out), whiteouts in odd places, special files,
// unmapped owners, decompression and sparse-file bombs, and OCI archives whose manifests
// carry bad digests or foreign URLs. Nothing here touches the file system but the
// archive a caller asks to be written.
package evil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// epoch is the modification time of every entry.
var epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// Entry is one tar entry, written exactly as given: the name is not cleaned.
type Entry struct {
	Name     string
	Type     byte   // tar.TypeReg when zero
	Body     string // a regular file's content
	Link     string // a symlink's or hard link's target
	Mode     int64  // 0644 for files, 0755 for directories, 0777 for links when zero
	UID, GID int
	Major    int64 // device numbers for tar.TypeChar and tar.TypeBlock
	Minor    int64
	PAX      map[string]string // extra PAX records (xattrs: "SCHILY.xattr.NAME")
	Format   tar.Format        // tar.FormatUnknown lets archive/tar choose
}

// File, Dir, Symlink and Hardlink are the usual entries.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }
func Dir(name string) Entry        { return Entry{Name: name, Type: tar.TypeDir} }
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Link: target}
}

// Whiteout deletes path (slash-separated, relative to the root) in the layers below.
func Whiteout(path string) Entry {
	dir, base := splitLast(path)
	return File(dir+".wh."+base, "")
}

// Opaque hides everything the layers below have in dir.
func Opaque(dir string) Entry {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return File(dir+".wh..wh..opq", "")
}

func splitLast(path string) (dir, base string) {
	i := strings.LastIndex(path, "/")
	return path[:i+1], path[i+1:]
}

func (e Entry) header() *tar.Header {
	if e.Type == tar.TypeXGlobalHeader {
		return &tar.Header{Typeflag: e.Type, PAXRecords: e.PAX, Format: tar.FormatPAX}
	}
	h := &tar.Header{
		Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
		Devmajor: e.Major, Devminor: e.Minor, ModTime: epoch, PAXRecords: e.PAX, Format: e.Format,
	}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(e.Body))
	}
	if h.Mode == 0 {
		switch h.Typeflag {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink, tar.TypeLink:
			h.Mode = 0o777
		default:
			h.Mode = 0o644
		}
	}
	return h
}

// Tar returns an uncompressed tar stream of the entries, in order.
func Tar(entries ...Entry) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(e.header()); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MustTar is Tar for fixed entries, which cannot fail but through a bug in the caller.
func MustTar(entries ...Entry) []byte {
	b, err := Tar(entries...)
	if err != nil {
		panic(err)
	}
	return b
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b) // a bytes.Buffer does not fail
	_ = zw.Close()
	return out.Bytes()
}

// GzipBomb returns a gzip-compressed tar holding one file, name, of size zero bytes: about
// a thousandth of size once compressed.
func GzipBomb(name string, size int64) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// SparseTar returns a tar holding one GNU sparse file (old GNU format, type 'S'), name,
// whose apparent size is realSize but which stores only data, at offset 0: a few
// kilobytes of archive that a reader unaware of holes expands to realSize bytes.
// archive/tar cannot write sparse files, so the header is built by hand.
func SparseTar(name string, data string, realSize int64) []byte {
	hdr := make([]byte, 512)
	copy(hdr[0:100], name)
	octal(hdr[100:108], 0o644)
	octal(hdr[108:116], 0)
	octal(hdr[116:124], 0)
	octal(hdr[124:136], int64(len(data))) // the bytes stored
	octal(hdr[136:148], epoch.Unix())
	hdr[156] = 'S'
	copy(hdr[257:265], "ustar  \x00") // the old GNU magic and version
	// One sparse region (offset, length) at 386, no extension, the real size at 483.
	octal(hdr[386:398], 0)
	octal(hdr[398:410], int64(len(data)))
	hdr[482] = 0
	octal(hdr[483:495], realSize)
	checksum(hdr)
	var b bytes.Buffer
	b.Write(hdr)
	b.WriteString(data)
	b.Write(make([]byte, (512-len(data)%512)%512))
	b.Write(make([]byte, 1024)) // end of archive
	return b.Bytes()
}

// octal writes n as an octal number filling field, NUL-terminated when it leaves room.
func octal(field []byte, n int64) {
	s := strconv.FormatInt(n, 8)
	if len(s) >= len(field) {
		copy(field, s[len(s)-len(field):]) // the caller keeps n small enough
		return
	}
	s = strings.Repeat("0", len(field)-1-len(s)) + s
	copy(field, s+"\x00")
}

// PAXRecord formats one PAX extended header record: "LEN KEY=VALUE\n", where LEN counts
// the whole record.
func PAXRecord(key, value string) string {
	body := " " + key + "=" + value + "\n"
	n := len(body)
	for n != len(strconv.Itoa(n))+len(body) {
		n = len(strconv.Itoa(n)) + len(body)
	}
	return strconv.Itoa(n) + body
}

// PAXTar returns a tar of one entry, e, preceded by a PAX extended header whose body is
// records as they are (see PAXRecord): archive/tar refuses to write the records a hostile
// archive carries (over 1 MiB, GNU sparse keys), so the header is built by hand.
func PAXTar(records string, e Entry) ([]byte, error) {
	hdr := make([]byte, 512)
	copy(hdr[0:100], "PaxHeaders.0/"+e.Name)
	octal(hdr[100:108], 0o644)
	octal(hdr[108:116], 0)
	octal(hdr[116:124], 0)
	octal(hdr[124:136], int64(len(records)))
	octal(hdr[136:148], epoch.Unix())
	hdr[156] = tar.TypeXHeader
	copy(hdr[257:265], "ustar\x0000")
	checksum(hdr)
	var b bytes.Buffer
	b.Write(hdr)
	b.WriteString(records)
	b.Write(make([]byte, (512-len(records)%512)%512))
	e.Format = tar.FormatUSTAR
	rest, err := Tar(e)
	if err != nil {
		return nil, err
	}
	b.Write(rest)
	return b.Bytes(), nil
}

// SparsePAXTar returns a tar of one sparse file in the PAX 1.0 format (GNU tar's
// default): name has apparent size realSize, and only data, at offset 0, is stored.
func SparsePAXTar(name, data string, realSize int64) ([]byte, error) {
	records := PAXRecord("GNU.sparse.major", "1") + PAXRecord("GNU.sparse.minor", "0") +
		PAXRecord("GNU.sparse.name", name) + PAXRecord("GNU.sparse.realsize", strconv.FormatInt(realSize, 10))
	sparseMap := fmt.Sprintf("1\n0\n%d\n", len(data))
	sparseMap += strings.Repeat("\x00", (512-len(sparseMap)%512)%512)
	return PAXTar(records, Entry{Name: "GNUSparseFile.0/" + name, Body: sparseMap + data})
}

// checksum fills in a tar header's checksum field.
func checksum(hdr []byte) {
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
}
