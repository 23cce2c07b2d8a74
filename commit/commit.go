// Package commit owns turning a working container's changes into an image: the layer
// (the container's diff against its image, or its whole filesystem when squashed), the
// configuration and its history, the manifest, --change parsing, and the OCI and Docker
// output formats.
package commit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cstorage "go.podman.io/storage"

	"github.com/forge-build/forge/storage"
)

// The output formats.
const (
	FormatOCI    = "oci"
	FormatDocker = "docker"
)

// Options say how to commit. The zero value makes a nameless OCI image.
type Options struct {
	Names     []string // names for the new image (storage.LocalName applied); none = a nameless image
	Format    string   // FormatOCI (default) or FormatDocker
	Squash    bool     // one layer with the whole filesystem
	Changes   []string // -c/--change Dockerfile instructions, e.g. `CMD ["redis-server"]`
	CreatedBy string   // history created_by of the new layer (default "forge commit")
	// EmptyLayers are the created_by of instructions before this commit that changed
	// only the configuration; each gets its own empty_layer history entry, as in Docker.
	EmptyLayers []string
	Comment     string // history comment
	Author      string
	// Timestamp, when set, is the created time of the config and the history entry
	// (default now, UTC), and makes the new layer reproducible: every file's time set to
	// it, entries sorted, no owner names or access times (see reproducible.go).
	Timestamp *time.Time
	// Logger gets the one warning of an OCI commit that drops Docker-only settings;
	// nil = discard.
	Logger *slog.Logger
	// Consume says the caller removes the container right after the commit: its changes
	// are then moved into the new layer instead of copied (overlay), and the container
	// may have lost them when the commit fails.
	Consume bool
	// Metadata is the new image's store metadata (storage.CacheMetadata for a build
	// step), set on an identical image that existed already too; empty for none.
	Metadata string
}

// settings are Options checked and with their defaults filled in.
type settings struct {
	Options
	names   []string
	changes []Change
	format  format
	created time.Time
	log     *slog.Logger
}

func (o Options) settings() (settings, error) {
	st := settings{Options: o, log: o.Logger, created: time.Now().UTC()}
	if st.log == nil {
		st.log = slog.New(slog.DiscardHandler)
	}
	if o.Timestamp != nil {
		st.created = o.Timestamp.UTC()
	}
	if st.CreatedBy == "" {
		st.CreatedBy = "forge commit"
	}
	var err error
	if st.format, err = formatNamed(o.Format); err != nil {
		return st, err
	}
	for _, n := range o.Names {
		named, err := storage.LocalName(n)
		if err != nil {
			return st, err
		}
		st.names = append(st.names, named.String())
	}
	st.changes, err = ParseChanges(o.Changes)
	return st, err
}

// Commit writes the container's changes as a new image and returns its ID. A failure
// leaves no image and no layer behind.
func Commit(ctx context.Context, s *storage.Store, c *storage.Container, o Options) (imageID string, retErr error) {
	st, err := o.settings()
	if err != nil {
		return "", err
	}
	cfg := c.Config.Clone()
	if err := Apply(&cfg, st.changes); err != nil {
		return "", err
	}
	put, consume := putFunc(putPlain), st.Consume
	if st.Timestamp != nil {
		// A fixed timestamp: the layer is rewritten to be reproducible (reproducible.go).
		put, consume = putReproducible(st.created), false
	}
	layer, err := newLayer(ctx, s, c, st.Squash, consume, put)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil && layer != nil {
			retErr = errors.Join(retErr, deleteLayer(s.Storage(), layer.ID))
		}
	}()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	img, err := assemble(s.Storage(), c, cfg, layer, st)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	id, reused, err := img.create(s.Storage(), st.names, st.Metadata)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	if reused && layer != nil {
		// The same image exists already, on its own copy of this layer.
		return id, deleteLayer(s.Storage(), layer.ID)
	}
	return id, nil
}

// deleteLayer removes a layer this commit made; one already gone is fine.
func deleteLayer(st cstorage.Store, id string) error {
	if err := st.DeleteLayer(id); err != nil && !errors.Is(err, cstorage.ErrLayerUnknown) {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}
