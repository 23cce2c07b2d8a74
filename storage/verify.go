package storage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

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
	return scanTar(ctx, tar.NewReader(r), limit, nil)
}

// scanTar reads a tar to its last entry, calling visit (when not nil) for each header,
// and returns how many bytes unpacking it writes; past limit (> 0) it stops with
// ErrLayerTooLarge.
func scanTar(ctx context.Context, tr *tar.Reader, limit int64, visit func(*tar.Header)) (int64, error) {
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
		if visit != nil {
			visit(hdr)
		}
		total += tarBlock + max(hdr.Size, 0)
		if limit > 0 && total > limit {
			return total, fmt.Errorf("%w: %s and more (limit %s), at %q", ErrLayerTooLarge,
				humanSize(total), humanSize(limit), hdr.Name)
		}
	}
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
