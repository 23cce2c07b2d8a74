package storage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/archive"
)

// ErrLayerTooLarge is returned for a layer whose contents, unpacked, pass the limit.
var ErrLayerTooLarge = errors.New("layer unpacks past the size limit")

// tarBlock is the size of a tar header; each entry costs at least one.
const tarBlock = 512

// LayerExpansion reads a layer blob (a tar, compressed or not) to its end and returns how
// many bytes unpacking it writes: every entry's size, a sparse file at its apparent size
// (storage writes its holes as zeros), plus a header block per entry. Past limit (when
// limit > 0) it stops with ErrLayerTooLarge, having decompressed at most about limit
// bytes: a small gzip or a sparse entry cannot make it do much work.
func LayerExpansion(ctx context.Context, blob io.Reader, limit int64) (int64, error) {
	r, err := archive.DecompressStream(blob)
	if err != nil {
		return 0, fmt.Errorf("decompress layer: %w", err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read layer: %w", err)
		}
		total += tarBlock + max(hdr.Size, 0)
		if limit > 0 && total > limit {
			return total, fmt.Errorf("%w: %s and more (limit %s), at %q", ErrLayerTooLarge,
				humanSize(total), humanSize(limit), hdr.Name)
		}
	}
}

// CheckLayers reads every layer of the image name refers to (a transport reference such
// as oci-archive:FILE, or a registry name) and fails with ErrLayerTooLarge, naming the
// layer, for the first whose contents pass limit. It downloads what it reads: call it
// before pulling a local archive, where reading twice is cheap.
func (s *Store) CheckLayers(ctx context.Context, name string, o RegistryOptions, limit int64) (retErr error) {
	sys, err := s.systemContext(o)
	if err != nil {
		return err
	}
	ref, ok, err := transportReference(name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("check layers of %s: not a transport reference", name)
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return err
	}
	defer func() {
		if err := src.Close(); err != nil && retErr == nil {
			retErr = err
		}
	}()
	img, err := image.FromSource(ctx, sys, src)
	if err != nil {
		return err
	}
	for i, info := range img.LayerInfos() {
		if err := checkLayer(ctx, src, info, limit); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, info.Digest, err)
		}
	}
	return nil
}

func checkLayer(ctx context.Context, src types.ImageSource, info types.BlobInfo, limit int64) error {
	r, _, err := src.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = LayerExpansion(ctx, r, limit)
	return err
}

// humanSize prints a byte count in the largest binary unit that keeps it at least 1.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
