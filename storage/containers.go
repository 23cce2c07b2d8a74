package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	cstorage "go.podman.io/storage"
)

// stateKey names the big-data item that holds a working container's state.
const stateKey = "forge-state.json"

// ErrContainerUnknown is returned when no container matches a name or ID.
var ErrContainerUnknown = cstorage.ErrContainerUnknown

// ErrNotWorkingContainer is returned for a container forge (or a compatible tool) did not make.
var ErrNotWorkingContainer = errors.New("not a forge working container")

// Container is a working container: a writable layer on top of an image, plus the image
// configuration it will be committed with.
type Container struct {
	ID          string      `json:"-"`
	Name        string      `json:"-"`
	FromImage   string      `json:"fromImage"`   // the name it was made from; "scratch" for none
	FromImageID string      `json:"fromImageID"` // empty for scratch
	Created     time.Time   `json:"created"`
	Config      ImageConfig `json:"config"`
	// ParentLayer is the top layer of FromImage: the container's changes are its own
	// layer's difference to this one.
	ParentLayer string `json:"-"`
	LayerID     string `json:"-"`
}

// FromOptions are the flags of `forge from`.
type FromOptions struct {
	Name     string // default: <image>-working-container[-N]
	Pull     PullPolicy
	Registry RegistryOptions
	Progress io.Writer
	// Throwaway marks a build step's container, which never outlives the build: the store
	// records it and its layer without fsync and mounts its overlay volatile, so syncs in
	// the container return at once and unmounting it writes nothing back. A crash of the
	// machine may lose such a container's records. Before committing one, call SyncVolatile:
	// an image's layer must be on disk before the image is recorded.
	Throwaway bool
}

// From makes a working container from image ("scratch" for an empty one).
func (s *Store) From(ctx context.Context, image string, o FromOptions) (*Container, error) {
	c := &Container{FromImage: image, Config: ScratchConfig(), Created: time.Now().UTC()}
	if image != "scratch" {
		img, err := s.Pull(ctx, image, PullOptions{Registry: o.Registry, Policy: o.Pull, Progress: o.Progress})
		if err != nil {
			return nil, err
		}
		if c.Config, err = s.ImageConfig(ctx, img.ID); err != nil {
			return nil, err
		}
		c.FromImageID = img.ID
		if len(img.Names) > 0 && !strings.HasPrefix(image, img.ID) {
			c.FromImage = img.Names[0]
		}
	}
	name, err := s.containerName(o.Name, c.FromImage)
	if err != nil {
		return nil, err
	}
	c.Name = name
	state, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	made, err := s.store.CreateContainer("", []string{name}, c.FromImageID, "", "", &cstorage.ContainerOptions{
		BigData:  []cstorage.ContainerBigDataOption{{Key: stateKey, Data: state}},
		Volatile: o.Throwaway,
	})
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	if s.noMounts {
		if err := s.recordRootFS(ctx, made.ID); err != nil {
			return nil, errors.Join(err, s.store.DeleteContainer(made.ID))
		}
	}
	return s.loadContainer(made)
}

func (s *Store) parentLayer(layerID string) (string, error) {
	l, err := s.store.Layer(layerID)
	if err != nil {
		return "", fmt.Errorf("container layer %s: %w", layerID, err)
	}
	return l.Parent, nil
}

// containerName returns the requested name, or the first free one of Buildah's pattern.
func (s *Store) containerName(requested, image string) (string, error) {
	if requested != "" {
		if _, err := s.store.Container(requested); err == nil {
			return "", fmt.Errorf("container name %q is already in use", requested)
		}
		return requested, nil
	}
	base := "working-container"
	if image != "scratch" {
		base = baseName(image) + "-" + base
	}
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := s.store.Container(name); errors.Is(err, cstorage.ErrContainerUnknown) {
			return name, nil
		}
	}
}

// baseName is the last path component of an image name without tag or digest.
func baseName(image string) string {
	if named, err := reference.ParseNormalizedNamed(image); err == nil {
		return path.Base(reference.Path(named))
	}
	name := image
	if i := strings.IndexAny(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name)
}

// ImageConfig reads the configuration of a local image.
func (s *Store) ImageConfig(ctx context.Context, imageID string) (ImageConfig, error) {
	if blob := s.storedConfig(imageID); blob != nil {
		return ParseImageConfig(blob)
	}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, imageID)
	if err != nil {
		return ImageConfig{}, err
	}
	img, err := ref.NewImage(ctx, nil)
	if err != nil {
		return ImageConfig{}, fmt.Errorf("open image %s: %w", imageID, err)
	}
	defer img.Close()
	blob, err := img.ConfigBlob(ctx)
	if err != nil {
		return ImageConfig{}, fmt.Errorf("read config of image %s: %w", imageID, err)
	}
	return ParseImageConfig(blob)
}

// storedConfig reads the config of an image with an OCI or Docker schema 2 manifest
// straight from the store, where image/v5 keeps it under its digest, checked against
// that digest: a cached build reads one per step, and opening the image through image/v5
// first sums its layers' sizes and parses the manifest twice. It returns nil for any other
// image (a manifest list or schema 1), which ImageConfig leaves to image/v5.
func (s *Store) storedConfig(imageID string) []byte {
	m, err := s.store.ImageBigData(imageID, cstorage.ImageDigestBigDataKey)
	if err != nil {
		return nil
	}
	if t := manifest.GuessMIMEType(m); t != imgspecv1.MediaTypeImageManifest && t != manifest.DockerV2Schema2MediaType {
		return nil
	}
	var parsed struct {
		Config struct{ Digest digest.Digest }
	}
	if json.Unmarshal(m, &parsed) != nil || parsed.Config.Digest.Validate() != nil {
		return nil
	}
	blob, err := s.store.ImageBigData(imageID, parsed.Config.Digest.String())
	if err != nil || parsed.Config.Digest.Algorithm().FromBytes(blob) != parsed.Config.Digest {
		return nil
	}
	return blob
}

// Container finds a working container by name or ID.
func (s *Store) Container(nameOrID string) (*Container, error) {
	sc, err := s.store.Container(nameOrID)
	if err != nil {
		if errors.Is(err, cstorage.ErrContainerUnknown) {
			return nil, fmt.Errorf("container %s: %w", nameOrID, ErrContainerUnknown)
		}
		return nil, fmt.Errorf("container %s: %w", nameOrID, err)
	}
	return s.loadContainer(sc)
}

func (s *Store) loadContainer(sc *cstorage.Container) (*Container, error) {
	data, err := s.store.ContainerBigData(sc.ID, stateKey)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", firstName(sc.Names, sc.ID), ErrNotWorkingContainer)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("container %s: state: %w", firstName(sc.Names, sc.ID), err)
	}
	c.ID, c.LayerID = sc.ID, sc.LayerID
	if len(sc.Names) > 0 {
		c.Name = sc.Names[0]
	}
	if c.ParentLayer, err = s.parentLayer(sc.LayerID); err != nil {
		return nil, err
	}
	return &c, nil
}

func firstName(names []string, id string) string {
	if len(names) > 0 {
		return names[0]
	}
	return id
}

// SaveContainer records a working container's changed configuration.
func (s *Store) SaveContainer(c *Container) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.store.SetContainerBigData(c.ID, stateKey, data); err != nil {
		return fmt.Errorf("save container %s: %w", c.Name, err)
	}
	return nil
}

// ContainerEntry is one row of `forge containers`.
type ContainerEntry struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ImageID   string `json:"imageid"`
	ImageName string `json:"imagename"`
	Working   bool   `json:"builder"` // made by forge (false: another tool's container, --all only)
}

// Containers lists working containers; all adds containers other tools made in the store.
func (s *Store) Containers(ctx context.Context, all bool) ([]ContainerEntry, error) {
	stored, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []ContainerEntry
	for i := range stored {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sc := &stored[i]
		e := ContainerEntry{ID: sc.ID, Name: firstName(sc.Names, sc.ID), ImageID: sc.ImageID}
		if c, err := s.loadContainer(sc); err == nil {
			e.Working, e.ImageName = true, c.FromImage
		} else if !all {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Mount mounts a container's root filesystem and returns its path. The mount lives in
// forge's mount namespace: it is usable by this process and, inside `forge unshare`, by
// the shell's children.
func (s *Store) Mount(c *Container) (string, error) {
	dir, err := s.store.Mount(c.ID, "")
	if err != nil {
		return "", fmt.Errorf("mount container %s: %w", c.Name, err)
	}
	return dir, nil
}

// Unmount undoes one Mount (all of them with force).
func (s *Store) Unmount(c *Container, force bool) error {
	if _, err := s.store.Unmount(c.ID, force); err != nil {
		return fmt.Errorf("unmount container %s: %w", c.Name, err)
	}
	return nil
}

// Mounted reports where a container is mounted, or "" when it is not.
func (s *Store) Mounted(c *Container) (string, error) {
	n, err := s.store.Mounted(c.ID)
	if err != nil || n == 0 {
		return "", err
	}
	sc, err := s.store.Container(c.ID)
	if err != nil {
		return "", err
	}
	l, err := s.store.Layer(sc.LayerID)
	if err != nil {
		return "", err
	}
	return l.MountPoint, nil
}

// RemoveContainer unmounts and deletes a working container and its layer.
func (s *Store) RemoveContainer(c *Container) error {
	if _, err := s.store.Unmount(c.ID, true); err != nil && !errors.Is(err, cstorage.ErrLayerNotMounted) {
		return fmt.Errorf("unmount container %s: %w", c.Name, err)
	}
	err := s.store.DeleteContainer(c.ID)
	if errors.Is(err, syscall.ENOSPC) {
		// On a full disk the container's own layer may hold what filled it (a COPY or
		// RUN that failed half-way), and deleting it needs room for the store's
		// metadata: empty the layer, then try again.
		if ferr := s.emptyLayer(c); ferr != nil {
			return fmt.Errorf("remove container %s: %w", c.Name, errors.Join(err, ferr))
		}
		err = s.store.DeleteContainer(c.ID)
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	return nil
}

// emptyLayer deletes the files of the container's own layer (its overlay upper
// directory), which is about to be removed with it.
func (s *Store) emptyLayer(c *Container) error {
	driver, err := s.store.GraphDriver()
	if err != nil {
		return err
	}
	meta, err := driver.Metadata(c.LayerID)
	if err != nil {
		return err
	}
	dir := meta["UpperDir"]
	if dir == "" {
		return fmt.Errorf("empty the layer of %s: the %s driver does not say where it is", c.Name, driver.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
