package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/transports/alltransports"
)

// PullUnnamed copies an image from any transport reference into the store without giving
// it a name (a build cache entry), and returns its ID.
func (s *Store) PullUnnamed(ctx context.Context, ref string, r RegistryOptions) (string, error) {
	sys, err := s.systemContext(r)
	if err != nil {
		return "", err
	}
	src, err := alltransports.ParseImageName(ref)
	if err != nil {
		return "", fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	img, err := s.copyIn(ctx, sys, src, nil, "", PullOptions{Registry: r})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// RemoteImage is an image in a registry known by its manifest and configuration only,
// which is all a build needs to go on from a cache entry: the next step's cache key
// comes from the configuration. Its layers are pulled (Pull) only when something needs
// the files.
type RemoteImage struct {
	Name   string // the repository and digest that pull exactly this image
	ID     string // the ID the store gives it: its config digest
	Config ImageConfig
	Layers int // how many layers its manifest lists
	reg    RegistryOptions
	// manifest and config are the blobs as the registry has them.
	manifest, config []byte
}

// ErrNoRemoteImage says a registry has no image under a tag.
var ErrNoRemoteImage = errors.New("no such image")

// FetchRemote reads the manifest and configuration of a registry image (name is
// "host/repo:tag"). A missing tag gives ErrNoRemoteImage.
func (s *Store) FetchRemote(ctx context.Context, name string, r RegistryOptions) (*RemoteImage, error) {
	sys, err := s.systemContext(r)
	if err != nil {
		return nil, err
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", name, err)
	}
	ref, err := docker.NewReference(reference.TagNameOnly(named))
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, sys)
	if err != nil {
		// The library gives no typed error for a missing tag; registries say "manifest unknown".
		if strings.Contains(err.Error(), "manifest unknown") {
			return nil, fmt.Errorf("%s: %w", name, ErrNoRemoteImage)
		}
		return nil, err
	}
	defer img.Close()
	blob, mimeType, err := img.Manifest(ctx)
	if err != nil {
		return nil, err
	}
	if manifest.MIMETypeIsMultiImage(mimeType) {
		return nil, fmt.Errorf("%s: a manifest list, which no cache entry is", name)
	}
	dgst, err := manifest.Digest(blob)
	if err != nil {
		return nil, err
	}
	config, err := img.ConfigBlob(ctx) // checked against the manifest's digest
	if err != nil {
		return nil, err
	}
	ri := &RemoteImage{Name: named.Name() + "@" + dgst.String(), ID: img.ConfigInfo().Digest.Encoded(),
		Layers: len(img.LayerInfos()), reg: r, manifest: blob, config: config}
	if err := json.Unmarshal(config, &ri.Config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	if len(ri.Config.RootFS.DiffIDs) != ri.Layers {
		return nil, fmt.Errorf("%s: the config lists %d layers, the manifest %d", name, len(ri.Config.RootFS.DiffIDs), ri.Layers)
	}
	return ri, nil
}

// PullRemote brings a registry image read by FetchRemote into the store, unnamed, and
// returns its ID. Only the layers the store does not hold yet are downloaded.
func (s *Store) PullRemote(ctx context.Context, ri *RemoteImage) (string, error) {
	if _, err := s.store.Image(ri.ID); err == nil {
		return ri.ID, nil
	}
	sys, err := s.systemContext(ri.reg)
	if err != nil {
		return "", err
	}
	named, err := reference.ParseNormalizedNamed(ri.Name)
	if err != nil {
		return "", err
	}
	src, err := docker.NewReference(named)
	if err != nil {
		return "", err
	}
	img, err := s.copyIn(ctx, sys, src, nil, ri.ID, PullOptions{Registry: ri.reg})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// RecordRemote records in the store, without a transfer, a registry image read by
// FetchRemote whose layers the store holds (those of a later entry of the same build
// were pulled), and returns its ID. It fails when a layer is missing.
func (s *Store) RecordRemote(ri *RemoteImage) (string, error) {
	if _, err := s.store.Image(ri.ID); err == nil {
		return ri.ID, nil
	}
	parent := ""
	for _, diffID := range ri.Config.RootFS.DiffIDs {
		id := existingLayer(s.store, chainLayerID(parent, diffID), parent, diffID)
		if id == "" {
			return "", fmt.Errorf("%s: layer %s is not in the store", ri.Name, diffID)
		}
		parent = id
	}
	var created time.Time
	if ri.Config.Created != nil {
		created = *ri.Config.Created
	}
	id, _, err := RecordImage(s.store, parent, created, ri.config, ri.manifest, nil)
	return id, err
}
