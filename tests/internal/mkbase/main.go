// Command mkbase writes a tiny busybox base image as an OCI archive (the
// oci-archive transport's format: a tar of an OCI image layout), built in code
// from a static busybox binary so that tests and the demo need no network.
//
// The image has one gzip layer: /bin/busybox and its applet symlinks,
// /etc/passwd and /etc/group, and /home/user/hello.txt owned by uid 1000, so a
// tool that loses file owners is caught. Timestamps are fixed: the same
// busybox binary always gives the same archive, byte for byte.
//
//	go run ./tests/internal/mkbase -o busybox.tar [-busybox /bin/busybox] [-hello TEXT] [-tag latest]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // registers sha256 for go-digest
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the modification time of every file and the image's creation time.
var epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// HelloText is the default content of /home/user/hello.txt.
const HelloText = "hello from busybox\n"

// fallbackApplets is used when `busybox --list` cannot be run.
var fallbackApplets = []string{
	"cat", "echo", "false", "id", "ip", "ls", "mkdir", "rm", "sh", "sleep", "touch", "true",
}

// options says what goes into the image.
type options struct {
	Busybox []byte   // the static busybox binary
	Applets []string // names linked to /bin/busybox
	Hello   string   // content of /home/user/hello.txt
	Tag     string   // org.opencontainers.image.ref.name in index.json
	Arch    string   // GOARCH-style architecture
}

func main() {
	out := flag.String("o", "", "write the OCI archive to this `file` (required)")
	bb := flag.String("busybox", "/bin/busybox", "static busybox `binary` to put in the image")
	rootfsTar := flag.String("rootfs-tar", "", "make the image from this root filesystem `tar` instead of busybox")
	cmd := flag.String("cmd", "bash", "the image's Cmd (one word) with -rootfs-tar")
	var opts options
	flag.StringVar(&opts.Hello, "hello", HelloText, "`content` of /home/user/hello.txt (a different one gives a different image)")
	flag.StringVar(&opts.Tag, "tag", "latest", "reference name recorded in index.json")
	flag.StringVar(&opts.Arch, "arch", runtime.GOARCH, "image architecture")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if *rootfsTar != "" {
		err = writeArchive(*out, func() ([]byte, error) { return fromRootfs(*rootfsTar, []string{*cmd}, opts) })
	} else {
		err = run(*out, *bb, opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkbase: %v\n", err)
		os.Exit(1)
	}
}

func run(out, busybox string, opts options) error {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("read busybox (Debian package busybox-static): %w", err)
	}
	opts.Busybox, opts.Applets = bin, applets(busybox)
	return writeArchive(out, func() ([]byte, error) { return build(opts) })
}

// writeArchive writes what produce returns to out, atomically.
func writeArchive(out string, produce func() ([]byte, error)) error {
	archive, err := produce()
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, archive, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// applets asks busybox for its applet names.
func applets(busybox string) []string {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fallbackApplets
	}
	var names []string
	for _, name := range strings.Fields(string(out)) {
		if name != "busybox" && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	return names
}

// build returns the OCI archive's bytes.
func build(opts options) ([]byte, error) {
	layer, diffID, err := makeLayer(opts)
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	return assemble(opts, imageConfig(opts.Arch, diffID), layer)
}

// assemble returns the OCI archive of an image with one gzip layer.
func assemble(opts options, image v1.Image, layer []byte) ([]byte, error) {
	config, err := json.Marshal(image)
	if err != nil {
		return nil, err
	}
	manifest, err := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    descriptor(v1.MediaTypeImageConfig, config),
		Layers:    []v1.Descriptor{descriptor(v1.MediaTypeImageLayerGzip, layer)},
	})
	if err != nil {
		return nil, err
	}
	mdesc := descriptor(v1.MediaTypeImageManifest, manifest)
	mdesc.Annotations = map[string]string{v1.AnnotationRefName: opts.Tag}
	index, err := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{mdesc},
	})
	if err != nil {
		return nil, err
	}
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return nil, err
	}
	return writeLayout(layout, index, [][]byte{config, manifest, layer})
}

func imageConfig(arch string, diffID digest.Digest) v1.Image {
	created := epoch
	return v1.Image{
		Created:  &created,
		Platform: v1.Platform{Architecture: arch, OS: "linux"},
		Config: v1.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []v1.History{{Created: &created, CreatedBy: "mkbase: busybox-static", Comment: "forge test fixture"}},
	}
}

func descriptor(mediaType string, blob []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
}

// entry is one file of the layer.
type entry struct {
	hdr  tar.Header
	body []byte
}

func dir(name string, mode int64, uid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid}}
}

func file(name string, mode int64, uid int, body []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body))}, body: body}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func rootfs(opts options) []entry {
	entries := []entry{
		dir("bin", 0o755, 0),
		file("bin/busybox", 0o755, 0, opts.Busybox),
	}
	for _, name := range opts.Applets {
		entries = append(entries, symlink("bin/"+name, "busybox"))
	}
	return append(entries,
		dir("etc", 0o755, 0),
		file("etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/bin/sh\n"+
			"user:x:1000:1000:user:/home/user:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		file("etc/group", 0o644, 0, []byte("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")),
		dir("home", 0o755, 0),
		dir("home/user", 0o755, 1000),
		file("home/user/hello.txt", 0o640, 1000, []byte(opts.Hello)),
		dir("root", 0o700, 0),
		dir("tmp", 0o1777, 0),
	)
}

// makeLayer returns the gzip layer and the digest of its uncompressed tar.
func makeLayer(opts options) ([]byte, digest.Digest, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	digester := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, digester.Hash()))
	seen := map[string]bool{}
	for _, e := range rootfs(opts) {
		if seen[e.hdr.Name] {
			continue
		}
		seen[e.hdr.Name] = true
		e.hdr.ModTime = epoch
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, "", err
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digester.Digest(), nil
}

type namedFile struct {
	name string
	body []byte
}

// writeLayout returns a tar of an OCI image layout holding the blobs.
func writeLayout(layout, index []byte, blobs [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(hdr tar.Header, body []byte) error {
		hdr.ModTime, hdr.Format = epoch, tar.FormatPAX
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(&hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := add(tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, nil); err != nil {
			return nil, err
		}
	}
	files := []namedFile{{v1.ImageLayoutFile, layout}, {"index.json", index}}
	for _, b := range blobs {
		files = append(files, namedFile{"blobs/sha256/" + digest.FromBytes(b).Encoded(), b})
	}
	for _, f := range files {
		if err := add(tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644}, f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
