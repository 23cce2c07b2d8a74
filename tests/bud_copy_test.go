package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// COPY, ADD, stages and the build context: cases of TestBudInstructions.

func budCopyCases() []budCase {
	return []budCase{
		{
			name: "COPY --chown by id and name and --chmod",
			dockerfile: `FROM busybox
COPY --chown=1000:1000 f /by-id
COPY --chown=user:nogroup f /by-name
COPY --chown=user f /user-only
COPY --chmod=0640 f /mode640
COPY --chown=user --chmod=755 dir /dir-owned/
`,
			files: map[string]string{"f": "f\n", "dir/x": "x\n"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantHeader(t, "by-id", 1000, 1000, 0o644)
				b.wantHeader(t, "by-name", 1000, 65534, 0o644)
				b.wantHeader(t, "user-only", 1000, 1000, 0o644)
				b.wantHeader(t, "mode640", 0, 0, 0o640)
				b.wantHeader(t, "dir-owned/x", 1000, 1000, 0o755)
				b.wantFile(t, "dir-owned/x", "x\n")
			},
		},
		{
			name: "COPY wildcards",
			dockerfile: `FROM busybox
COPY *.txt /txt/
COPY ?.md /md/
COPY [ab].txt /class/
`,
			files: map[string]string{"a.txt": "a\n", "b.txt": "b\n", "c.md": "c\n", "sub/d.txt": "d\n"},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/txt", budDirNames(t, b, "txt"), "a.txt", "b.txt")
				budWantStrings(t, "/md", budDirNames(t, b, "md"), "c.md")
				budWantStrings(t, "/class", budDirNames(t, b, "class"), "a.txt", "b.txt")
			},
		},
		{
			name: "COPY directories modes symlinks",
			dockerfile: `FROM busybox
COPY dir /d
COPY top-ln /followed
`,
			files: map[string]string{"dir/x": "x\n", "dir/sub/y": "y\n", "dir/empty/": "", "dir/ln": "-> x", "top-ln": "-> dir/x"},
			prepare: func(t *testing.T, _ *store, ctx string) {
				budWriteFiles(t, ctx, map[string]string{"dir/run.sh": "#!/bin/sh\n", "dir/secret": "s\n"})
				for name, mode := range map[string]os.FileMode{"dir/run.sh": 0o755, "dir/secret": 0o600} {
					if err := os.Chmod(filepath.Join(ctx, name), mode); err != nil {
						t.Fatal(err)
					}
				}
			},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/d (the directory's contents, not the directory)", budDirNames(t, b, "d"), "empty", "ln", "run.sh", "secret", "sub", "x")
				b.wantFile(t, "d/sub/y", "y\n")
				b.wantHeader(t, "d/x", 0, 0, 0o644)
				b.wantHeader(t, "d/run.sh", 0, 0, 0o755)
				b.wantHeader(t, "d/secret", 0, 0, 0o600)
				if h := b.hdr(t, "d/ln"); h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "x" {
					t.Errorf("/d/ln: %+v, want a symlink to x (kept, not followed)", h)
				}
				if h := b.hdr(t, "followed"); h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("/followed: %+v, want a regular file (a symlink named as the source is followed)", h)
				}
				b.wantFile(t, "followed", "x\n")
			},
		},
		{
			name: "COPY trailing slash rules",
			dockerfile: `FROM busybox
COPY f /newdir/
COPY f /newfile
COPY a.txt b.txt /multi/
WORKDIR /wd
COPY f rel
COPY f ./
`,
			files: map[string]string{"f": "f\n", "a.txt": "a\n", "b.txt": "b\n"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "newdir/f", "f\n")
				if h := b.hdr(t, "newfile"); h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("/newfile: %+v, want a regular file", h)
				}
				budWantStrings(t, "/multi", budDirNames(t, b, "multi"), "a.txt", "b.txt")
				b.wantFile(t, "wd/rel", "f\n")
				b.wantFile(t, "wd/f", "f\n")
			},
		},
		{
			name: "ADD local tar archives",
			dockerfile: `FROM busybox
ADD arch.tar.gz /x/
ADD arch.tar /y
COPY arch.tar.gz /z/
ADD plain.txt /p/
`,
			files: map[string]string{"plain.txt": "plain\n"},
			prepare: func(t *testing.T, _ *store, ctx string) {
				budWriteFiles(t, ctx, map[string]string{
					"arch.tar.gz": string(budTar(t, true, map[string]string{"a/b.txt": "in the archive\n"})),
					"arch.tar":    string(budTar(t, false, map[string]string{"c.txt": "plain tar\n"})),
				})
			},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "x/a/b.txt", "in the archive\n")
				b.wantHeader(t, "x/a/b.txt", 1234, 1234, 0o600) // owners and modes from the archive
				b.wantFile(t, "y/c.txt", "plain tar\n")
				if h := b.hdr(t, "z/arch.tar.gz"); h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("COPY of a tar.gz must not extract it: /z/arch.tar.gz is %+v", h)
				}
				b.wantFile(t, "p/plain.txt", "plain\n")
			},
		},
		{
			name:       "ADD URL",
			dockerfile: "FROM busybox\nADD {{URL}}/dl.txt /dl/\nADD {{URL}}/dl.txt /named.txt\n",
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "dl/dl.txt", "downloaded\n")
				b.wantHeader(t, "dl/dl.txt", 0, 0, 0o600)
				b.wantFile(t, "named.txt", "downloaded\n")
			},
		},
		{
			name: "COPY --from=$STAGE",
			dockerfile: `ARG STAGE=other
FROM busybox AS builder
RUN echo from-builder > /f
FROM busybox AS other
RUN echo from-other > /f
FROM scratch
ARG STAGE
COPY --from=$STAGE /f /f
`,
			args: []string{"--build-arg", "STAGE=builder"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "f", "from-builder\n")
			},
		},
	}
}

func budStageCases() []budCase {
	return []budCase{
		{
			name: "--target skips stages it does not need",
			dockerfile: `FROM busybox AS broken
RUN echo stage-broken-ran && exit 3
FROM busybox AS base
RUN echo base > /base
FROM base AS runtime
RUN echo runtime > /runtime
FROM busybox AS after
RUN echo stage-after-ran && exit 4
`,
			args: []string{"--target", "runtime"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "base", "base\n")
				b.wantFile(t, "runtime", "runtime\n")
				if out := b.r.stdout + b.r.stderr; strings.Contains(out, "stage-broken-ran") || strings.Contains(out, "stage-after-ran") {
					t.Errorf("a stage --target runtime does not need was run: %v", b.r)
				}
			},
		},
		{
			name:       ".dockerignore with ! and **",
			dockerfile: "FROM busybox\nCOPY . /ctx/\n",
			files: map[string]string{
				".dockerignore": "secret.txt\nlogs/*.log\n!logs/keep.log\n**/*.tmp\n",
				"keep.txt":      "k\n", "secret.txt": "s\n", "logs/a.log": "a\n", "logs/keep.log": "k\n",
				"deep/x/y/z.tmp": "t\n", "deep/x/y/z.txt": "z\n", "top.tmp": "t\n",
			},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/ctx", budTree(t, filepath.Join(b.rootfs(t), "ctx")),
					".dockerignore", "Dockerfile", "deep/x/y/z.txt", "keep.txt", "logs/keep.log")
			},
		},
		{
			name:       ".containerignore",
			dockerfile: "FROM busybox\nCOPY . /ctx/\n",
			files:      map[string]string{".containerignore": "secret.txt\n", "keep.txt": "k\n", "secret.txt": "s\n"},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/ctx", budTree(t, filepath.Join(b.rootfs(t), "ctx")), ".containerignore", "Dockerfile", "keep.txt")
			},
		},
		{
			name:  "Dockerfile-specific .dockerignore wins with -f in the context",
			files: map[string]string{"build.Dockerfile": "FROM busybox\nCOPY . /ctx/\n", "build.Dockerfile.dockerignore": "b.txt\n", ".dockerignore": "a.txt\n", "a.txt": "a\n", "b.txt": "b\n"},
			args:  []string{"-f", "{{CTX}}/build.Dockerfile"},
			check: func(t *testing.T, _ *store, b *built) {
				budWantStrings(t, "/ctx", budTree(t, filepath.Join(b.rootfs(t), "ctx")),
					".dockerignore", "a.txt", "build.Dockerfile", "build.Dockerfile.dockerignore")
			},
		},
		{
			name:       "-f outside the context",
			dockerfile: "FROM busybox\nCOPY f /f\n",
			files:      map[string]string{"f": "in the context\n"},
			outside:    true,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "f", "in the context\n")
			},
		},
		{
			name:       "-f - reads stdin",
			dockerfile: "FROM busybox\nCOPY f /f\nRUN echo from-stdin > /g\n",
			files:      map[string]string{"f": "in the context\n"},
			stdin:      true,
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "f", "in the context\n")
				b.wantFile(t, "g", "from-stdin\n")
			},
		},
		{
			name:  "Containerfile",
			files: map[string]string{"Containerfile": "FROM busybox\nRUN echo containerfile > /which\n"},
			check: func(t *testing.T, _ *store, b *built) {
				b.wantFile(t, "which", "containerfile\n")
			},
		},
	}
}

// budTar returns a tar (gzipped when gz) of files, each owned by 1234:1234, mode 0600.
func budTar(t *testing.T, gz bool, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, name := range budKeys(files) {
		dir := filepath.Dir(name)
		if dir != "." {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, Uid: 1234, Gid: 1234}); err != nil {
				t.Fatal(err)
			}
		}
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Uid: 1234, Gid: 1234, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// budTree lists the files, symlinks and empty directories under dir, relative and sorted.
func budTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.IsDir() {
			if entries, _ := os.ReadDir(p); len(entries) == 0 && rel != "." {
				out = append(out, rel+"/")
			}
			return nil
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}
