package storage

import (
	"fmt"
	"log/slog"
	"slices"

	cstorage "go.podman.io/storage"
)

// removeHalfWritten deletes the images that a killed process left half-written. The
// storage library records a new image, then writes its manifest and config, all under one
// lock: an image without its manifest was never finished, and no live process can be
// finishing it. Left in place it would be listed, fail every read, and be taken for
// complete by the next commit of the same config (the same ID).
func removeHalfWritten(st cstorage.Store, log *slog.Logger) error {
	images, err := st.Images()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, img := range images {
		if img.ReadOnly || slices.Contains(img.BigDataNames, cstorage.ImageDigestBigDataKey) {
			continue // a read-only additional store is not forge's to repair
		}
		if _, err := st.DeleteImage(img.ID, true); err != nil {
			return fmt.Errorf("remove half-written image %s: %w", img.ID, err)
		}
		log.Warn("removed an image an interrupted command left half-written", "id", img.ID)
	}
	return nil
}
