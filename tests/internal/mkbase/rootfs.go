package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// fromRootfs returns an OCI archive whose one layer is the root filesystem in
// the tar file rootfsTar (such as `mmdebstrap --variant=minbase bookworm
// rootfs.tar` writes), with cmd as the image's Cmd.
func fromRootfs(rootfsTar string, cmd []string, opts options) ([]byte, error) {
	f, err := os.Open(rootfsTar)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	layer, diffID, err := rootfsLayer(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rootfsTar, err)
	}
	config := imageConfig(opts.Arch, diffID)
	config.Config.Cmd = cmd
	config.History[0].CreatedBy = "mkbase: rootfs tar"
	return assemble(opts, config, layer)
}

// rootfsLayer copies a rootfs tar into a gzip layer: names lose their "./"
// prefix, and /dev keeps only its directory (device nodes cannot be made in
// a user namespace, and a runtime provides /dev anyway). It returns the layer
// and the digest of its uncompressed tar.
func rootfsLayer(r io.Reader) ([]byte, digest.Digest, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	digester := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, digester.Hash()))
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", err
		}
		hdr.Name = strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(hdr.Linkname, "./")
		}
		if hdr.Name == "" || (strings.HasPrefix(hdr.Name, "dev/") && hdr.Name != "dev/") {
			continue
		}
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, "", fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digester.Digest(), nil
}
