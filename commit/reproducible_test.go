package commit

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

var sourceDate = time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)

// rawEntry is a tar entry as a test writes it: any header, any contents.
type rawEntry struct {
	hdr  tar.Header
	body string
}

func writeRaw(t testing.TB, entries []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rewrite(t testing.TB, in []byte) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := reproducibleTar(context.Background(), bytes.NewReader(in), &out, sourceDate)
	return out.Bytes(), err
}

// readRaw reads a tar back: headers and contents, in order.
func readRaw(t *testing.T, b []byte) []rawEntry {
	t.Helper()
	var out []rawEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rawEntry{hdr: *h, body: string(body)})
	}
}

// hostTar is a layer as a build host writes it: unsorted, with owner names, access
// and change times and sub-second modification times that differ from run to run.
func hostTar(t *testing.T, when time.Time, reverse bool) []byte {
	t.Helper()
	entries := []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd", Mode: 0o644, Uid: 1000, Gid: 1000}, body: "hello\n"},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}}, body: "ELF"},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/localtime", Linkname: "/usr/share/zoneinfo/UTC", Mode: 0o777}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.old", Mode: 0o600}},
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
	}
	for i := range entries {
		h := &entries[i].hdr
		h.ModTime, h.AccessTime, h.ChangeTime = when, when.Add(time.Minute), when.Add(time.Hour)
		h.Uname, h.Gname, h.Format = "builder", "staff", tar.FormatPAX
	}
	if reverse {
		slices.Reverse(entries)
	}
	return writeRaw(t, entries)
}

func TestReproducibleTarSameBytes(t *testing.T) {
	t.Parallel()
	a, err := rewrite(t, hostTar(t, time.Date(2025, 1, 2, 3, 4, 5, 678, time.UTC), false))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rewrite(t, hostTar(t, time.Date(2026, 7, 8, 9, 10, 11, 12, time.UTC), true))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the same files written at other times and in another order gave other bytes:\n%q\n%q", a, b)
	}
	again, err := rewrite(t, a)
	if err != nil || !bytes.Equal(again, a) {
		t.Errorf("rewriting a rewritten tar changed it (err %v)", err)
	}
}

func TestReproducibleTarHeaders(t *testing.T) {
	t.Parallel()
	out, err := rewrite(t, hostTar(t, time.Now(), true))
	if err != nil {
		t.Fatal(err)
	}
	got := readRaw(t, out)
	var names []string
	for _, e := range got {
		h := e.hdr
		names = append(names, h.Name)
		if !h.ModTime.Equal(sourceDate) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: mtime %v atime %v ctime %v, want %v and none", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, sourceDate)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q %q kept", h.Name, h.Uname, h.Gname)
		}
		for k := range h.PAXRecords {
			if k != "SCHILY.xattr.security.capability" {
				t.Errorf("%s: PAX record %s kept", h.Name, k)
			}
		}
	}
	want := []string{"dev/null", "etc/", "etc/.wh.old", "etc/localtime", "etc/motd", "usr/bin/ping"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %q, want sorted %q", names, want)
	}
	byName := map[string]rawEntry{}
	for _, e := range got {
		byName[e.hdr.Name] = e
	}
	if e := byName["usr/bin/ping"]; e.body != "ELF" || e.hdr.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02" || e.hdr.Mode != 0o755 {
		t.Errorf("usr/bin/ping lost its contents, mode or capability: %+v", e)
	}
	if e := byName["etc/motd"]; e.body != "hello\n" || e.hdr.Uid != 1000 || e.hdr.Gid != 1000 {
		t.Errorf("etc/motd lost its contents or owner IDs: %+v", e)
	}
	if e := byName["dev/null"]; e.hdr.Typeflag != tar.TypeChar || e.hdr.Devmajor != 1 || e.hdr.Devminor != 3 {
		t.Errorf("dev/null changed: %+v", e.hdr)
	}
	if e := byName["etc/localtime"]; e.hdr.Linkname != "/usr/share/zoneinfo/UTC" {
		t.Errorf("etc/localtime points to %q", e.hdr.Linkname)
	}
}

// A hard link whose name sorts before the file it names would be written before it; the
// first name must carry the contents instead.
func TestReproducibleTarHardLinks(t *testing.T) {
	t.Parallel()
	in := writeRaw(t, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "z/file", Mode: 0o640, Uid: 7}, body: "shared\n"},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "m/link", Linkname: "z/file"}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "a/link", Linkname: "z/file"}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "b/below", Linkname: "in/a/lower/layer"}},
	})
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	got := readRaw(t, out)
	want := []struct {
		name, link, body string
		typ              byte
	}{
		{"a/link", "", "shared\n", tar.TypeReg},
		{"b/below", "in/a/lower/layer", "", tar.TypeLink},
		{"m/link", "a/link", "", tar.TypeLink},
		{"z/file", "a/link", "", tar.TypeLink},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		h := got[i].hdr
		if h.Name != w.name || h.Typeflag != w.typ || h.Linkname != w.link || got[i].body != w.body {
			t.Errorf("entry %d: %s type %c -> %q body %q; want %s type %c -> %q body %q",
				i, h.Name, h.Typeflag, h.Linkname, got[i].body, w.name, w.typ, w.link, w.body)
		}
		if h.Name != "b/below" && (h.Mode != 0o640 || h.Uid != 7) {
			t.Errorf("%s: mode %o uid %d, want the file's 640 and 7", h.Name, h.Mode, h.Uid)
		}
	}
	// The storage library unpacks it: all three names are one file.
	dir := t.TempDir()
	in2 := writeRaw(t, readRawWithout(t, out, "b/below"))
	if err := archive.Untar(bytes.NewReader(in2), dir, &archive.TarOptions{NoLchown: true}); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	var inodes []uint64
	for _, n := range []string{"a/link", "m/link", "z/file"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, inode(fi))
	}
	if inodes[0] != inodes[1] || inodes[1] != inodes[2] {
		t.Errorf("the three names are not one file: inodes %v", inodes)
	}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func readRawWithout(t *testing.T, b []byte, name string) []rawEntry {
	t.Helper()
	var out []rawEntry
	for _, e := range readRaw(t, b) {
		if e.hdr.Name != name {
			out = append(out, e)
		}
	}
	return out
}

func TestReproducibleTarRefusesSparse(t *testing.T) {
	t.Parallel()
	if _, err := rewrite(t, sparseTar(t)); err == nil {
		t.Errorf("a sparse entry was accepted")
	}
}

// sparseTar is a GNU sparse 1.0 file in PAX format, which archive/tar reads but does not
// write: a PAX header block, its records, then the file's header, map and data.
func sparseTar(t testing.TB) []byte {
	t.Helper()
	record := func(k, v string) string {
		n := len(k) + len(v) + 3
		for len(fmt.Sprintf("%d %s=%s\n", n, k, v)) != n {
			n++
		}
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	pax := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
		record("GNU.sparse.name", "s") + record("GNU.sparse.realsize", "1024")
	body := "1\n512\n1\n" // one data region at 512, 1 byte long
	body += strings.Repeat("\x00", 512-len(body)) + "x"
	var buf bytes.Buffer
	block := func(name string, typ byte, size int) {
		var b [512]byte
		copy(b[0:], name)
		copy(b[100:], "0000644\x00")
		copy(b[108:], "0000000\x00")
		copy(b[116:], "0000000\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", size))
		copy(b[136:], "00000000000\x00")
		b[156] = typ
		copy(b[257:], "ustar\x0000")
		copy(b[148:], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		buf.Write(b[:])
	}
	pad := func(n int) { buf.Write(make([]byte, (512-n%512)%512)) }
	block("PaxHeaders/s", tar.TypeXHeader, len(pax))
	buf.WriteString(pax)
	pad(len(pax))
	block("GNUSparseFile/s", tar.TypeReg, len(body))
	buf.WriteString(body)
	pad(len(body))
	buf.Write(make([]byte, 1024))
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	if h, err := tr.Next(); err != nil || h.Size != 1024 {
		t.Fatalf("the sparse fixture does not read as a sparse file: %v %+v", err, h)
	}
	return buf.Bytes()
}

// Two containers that make the same file at different times, committed with the same
// timestamp, give the same layer and the same image; without one they do not.
func TestCommitTimestampReproducible(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, driver)
			commitNew := func(mtime time.Time, o Options) string {
				t.Helper()
				c := newContainer(t, f.s, f.baseID)
				root, err := f.s.Mount(c)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(root, "new.txt")
				if err := os.WriteFile(p, []byte("new\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
				if err := f.s.Unmount(c, false); err != nil {
					t.Fatal(err)
				}
				id, err := Commit(ctx, f.s, c, o)
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			ts := sourceDate
			for _, squash := range []bool{false, true} {
				a := commitNew(time.Now().Add(-time.Hour), Options{Timestamp: &ts, Squash: squash})
				b := commitNew(time.Now(), Options{Timestamp: &ts, Squash: squash})
				if a != b {
					t.Errorf("squash %v: the same files at other times with --timestamp gave images %s and %s", squash, a, b)
				}
				for _, h := range topLayerHeaders(t, f, a) {
					if !h.ModTime.Equal(ts) || h.Uname != "" || h.Gname != "" {
						t.Errorf("squash %v: layer entry %s: mtime %v, owner names %q %q", squash, h.Name, h.ModTime, h.Uname, h.Gname)
					}
				}
			}
			c := commitNew(time.Now().Add(-2*time.Hour), Options{Timestamp: &ts})
			d := commitNew(time.Now().Add(-3*time.Hour), Options{})
			if c == d {
				t.Errorf("without --timestamp a new mtime gave the same image %s", c)
			}
		})
	}
}

func topLayerHeaders(t *testing.T, f *fixture, id string) []*tar.Header {
	t.Helper()
	img, err := f.s.Storage().Image(id)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.s.Storage().Diff("", img.TopLayer, &cstorage.DiffOptions{Compression: new(archive.Uncompressed)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

// FuzzReproducibleTar: any input is refused or rewritten into a tar that a second
// rewrite leaves unchanged.
func FuzzReproducibleTar(f *testing.F) {
	f.Add([]byte{})
	f.Add(hostTarBytes())
	f.Add(sparseTar(f))
	f.Add(writeRaw(f, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "a", Linkname: "b"}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "b"}, body: "x"},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "c", Linkname: "a"}},
	}))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := rewrite(t, in)
		if err != nil {
			return
		}
		again, err := rewrite(t, out)
		if err != nil {
			t.Fatalf("rewriting the output failed: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("a second rewrite changed the tar")
		}
	})
}

func hostTarBytes() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "z", Size: 1, Uname: "u", ModTime: time.Unix(5, 6), Format: tar.FormatPAX})
	_, _ = tw.Write([]byte("z"))
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "a/", AccessTime: time.Unix(1, 0), Format: tar.FormatPAX})
	_ = tw.Close()
	return buf.Bytes()
}

// TestReproducibleTarLinkedSymlink: a second name of a symlink (the store writes it as a
// hard link) that sorts before its target still comes after the entry that holds it.
func TestReproducibleTarLinkedSymlink(t *testing.T) {
	t.Parallel()
	in := writeRaw(t, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "a/z", Linkname: "target", Mode: 0o777}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "a-b", Linkname: "a/z"}},
	})
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	got := readRaw(t, out)
	seen := map[string]bool{}
	for _, e := range got {
		if e.hdr.Typeflag == tar.TypeLink && !seen[e.hdr.Linkname] {
			t.Errorf("%s links to %s, which comes later: %+v", e.hdr.Name, e.hdr.Linkname, got)
		}
		seen[e.hdr.Name] = true
	}
	dir := t.TempDir()
	if err := archive.Untar(bytes.NewReader(out), dir, &archive.TarOptions{NoLchown: true}); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	for _, name := range []string{"a/z", "a-b"} {
		if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != "target" {
			t.Errorf("%s: %q, %v; want a symlink to target", name, target, err)
		}
	}
}

// TestReproducibleTarWhiteoutLinkname: a whiteout the store wrote with the "link" of the
// whiteout before it (overlay's whiteouts share an inode) loses it, so the layer is the
// same as one whose whiteouts were written separately.
func TestReproducibleTarWhiteoutLinkname(t *testing.T) {
	t.Parallel()
	shared := writeRaw(t, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.a", Mode: 0o600}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.b", Linkname: ".wh.a", Mode: 0o600}},
	})
	separate := writeRaw(t, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.a", Mode: 0o600}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.b", Mode: 0o600}},
	})
	a, err := rewrite(t, shared)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rewrite(t, separate)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("whiteouts with a leftover link name give other bytes than plain ones")
	}
}

// TestReproducibleTarLinkChains: a hard link to a name that is itself a hard link names
// the same file; after the rewrite every link names the entry that holds the contents,
// which comes first, and a chain that leaves the tar names its end directly.
func TestReproducibleTarLinkChains(t *testing.T) {
	t.Parallel()
	in := writeRaw(t, []rawEntry{
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "m", Linkname: "n"}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "n", Mode: 0o644}, body: "data"},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "d/c", Linkname: "m"}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "below"}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "w", Linkname: "x"}},
	})
	out, err := rewrite(t, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readRaw(t, out) {
		got = append(got, fmt.Sprintf("%s %c %s %q", e.hdr.Name, e.hdr.Typeflag, e.hdr.Linkname, e.body))
	}
	want := []string{
		`d/c 0  "data"`,
		`m 1 d/c ""`,
		`n 1 d/c ""`,
		`w 1 below ""`,
		`x 1 below ""`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rewritten entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if again, err := rewrite(t, out); err != nil || !bytes.Equal(again, out) {
		t.Errorf("a second rewrite changed the tar (err %v)", err)
	}
}

// TestReproducibleTarRepeatedName: a tar that names one path twice (spelled alike or not)
// is refused, naming the path: its sorted order could not say which entry a link names.
func TestReproducibleTarRepeatedName(t *testing.T) {
	t.Parallel()
	for _, second := range []string{"b", "./b", "x/../b"} {
		in := writeRaw(t, []rawEntry{
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "b", Mode: 0o644}, body: "one"},
			{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "a", Linkname: "b"}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: second, Mode: 0o644}, body: "two"},
		})
		if _, err := rewrite(t, in); err == nil || !strings.Contains(err.Error(), second+": the name appears twice") {
			t.Errorf("second entry %q: err %v, want it to name the repeated path", second, err)
		}
	}
}
