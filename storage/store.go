// Package storage owns forge's local image store (go.podman.io/storage) and moving images in
// and out of it with go.podman.io/image/v5: pull, push, short-name resolution, credentials,
// listing, tagging and removal. It chooses the storage driver and remembers why. Where
// nothing can be mounted (chroot isolation) it uses vfs, records each new container's root
// filesystem, and finds the container's changes by comparing with that record.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	cstorage "go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	stypes "go.podman.io/storage/types"
	"golang.org/x/sys/unix"
)

// Options say where the store lives and how to reach registries. The zero value uses the
// same defaults as Buildah and Podman (storage.conf, ~/.local/share/containers/storage).
type Options struct {
	GraphRoot      string   // --root
	RunRoot        string   // --runroot
	Driver         string   // --storage-driver; empty: chosen by Open
	DriverOptions  []string // --storage-opt
	RegistriesConf string   // --registries-conf
	// IgnoreChownErrors is set when only one ID is mapped: files owned by other users
	// are then stored as the caller's own.
	IgnoreChownErrors bool
	// NoMounts is set for chroot isolation: nothing can be mounted, so the driver is vfs,
	// and each new container records its root filesystem so that its changes can be
	// found by comparing (TrackedChanges).
	NoMounts bool
	// TempDir holds large temporary files (unpacked archives during a pull); default /var/tmp.
	TempDir string
	// MaxLayerSize (> 0) is how far one layer of a pulled image, or one archive unpacked
	// by ADD, may expand: past it the pull or step fails with ErrLayerTooLarge. 0: no limit.
	MaxLayerSize int64
	Logger       *slog.Logger
}

// Store is an open local store plus the registry settings used for pulls and pushes.
type Store struct {
	// volatile is whether throwaway containers are mounted volatile (SyncVolatile).
	volatileOnce sync.Once
	volatile     bool

	store          cstorage.Store
	driverReason   string
	registriesConf string
	tempDir        string
	maxLayerSize   int64
	noMounts       bool
	log            *slog.Logger
}

// Open opens (creating when needed) the store described by opts.
func Open(ctx context.Context, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.RegistriesConf != "" {
		if _, err := os.Stat(opts.RegistriesConf); err != nil {
			return nil, fmt.Errorf("registries.conf: %w", err)
		}
	}
	base, err := stypes.DefaultStoreOptions()
	if err != nil {
		return nil, fmt.Errorf("read storage.conf: %w", err)
	}
	if opts.GraphRoot != "" {
		base.GraphRoot = opts.GraphRoot
	}
	if opts.RunRoot != "" {
		base.RunRoot = opts.RunRoot
	}
	base.GraphDriverOptions = append(base.GraphDriverOptions, opts.DriverOptions...)
	if err := checkRoot(base.GraphRoot); err != nil {
		return nil, err
	}
	store, reason, err := openWithDriver(ctx, base, opts)
	if err != nil {
		return nil, err
	}
	log.Debug("store opened", "driver", store.GraphDriverName(), "reason", reason,
		"graphroot", store.GraphRoot(), "runroot", store.RunRoot())
	if err := removeHalfWritten(store, log); err != nil {
		_, _ = store.Shutdown(false)
		return nil, err
	}
	return &Store{store: store, driverReason: reason, registriesConf: opts.RegistriesConf, tempDir: opts.TempDir, maxLayerSize: opts.MaxLayerSize,
		noMounts: opts.NoMounts, log: log}, nil
}

// checkRoot gives a clear error when the graph root cannot be created, before storage
// leaves anything half-made.
func checkRoot(root string) error {
	if root == "" {
		return errors.New("no storage root: set --root or HOME")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("storage root %s: %w", root, unwrapPath(err))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return err
}

// driverChoice is one storage driver to try and why it would be used.
type driverChoice struct {
	name    string
	options []string
	reason  string
}

// openWithDriver opens the store with the requested driver, the one the store already
// uses, or the best that works: kernel overlay, then fuse-overlayfs, then vfs.
func openWithDriver(ctx context.Context, base stypes.StoreOptions, opts Options) (cstorage.Store, string, error) {
	fixed := fixedDriver(base, opts)
	if opts.NoMounts {
		c, err := noMountsDriver(base, opts)
		if err != nil {
			return nil, "", err
		}
		fixed = &c
	}
	if fixed != nil {
		s, err := getStore(base, *fixed, opts.IgnoreChownErrors)
		if err != nil {
			return nil, "", fmt.Errorf("open store %s with driver %s: %w", base.GraphRoot, fixed.name, err)
		}
		return s, fixed.reason, nil
	}
	var failures []string
	for _, c := range fallbackDrivers(base.GraphDriverOptions) {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		s, err := getStore(base, c, opts.IgnoreChownErrors)
		if err == nil {
			if len(failures) > 0 {
				c.reason += " (" + strings.Join(failures, "; ") + ")"
			}
			return s, c.reason, nil
		}
		if !errors.Is(err, graphdriver.ErrNotSupported) && !errors.Is(err, graphdriver.ErrPrerequisites) &&
			!errors.Is(err, graphdriver.ErrIncompatibleFS) {
			return nil, "", fmt.Errorf("open store %s with driver %s: %w", base.GraphRoot, c.name, err)
		}
		failures = append(failures, fmt.Sprintf("%s: %v", c.name, err))
		removeEmptyDriverDir(base.GraphRoot, c.name)
	}
	return nil, "", fmt.Errorf("open store %s: no storage driver works: %s", base.GraphRoot, strings.Join(failures, "; "))
}

// fixedDriver returns the driver the user or the store's history dictates, if any.
func fixedDriver(base stypes.StoreOptions, opts Options) *driverChoice {
	switch {
	case opts.Driver != "":
		return &driverChoice{name: opts.Driver, options: base.GraphDriverOptions, reason: "chosen with --storage-driver"}
	case os.Getenv("STORAGE_DRIVER") != "":
		return &driverChoice{name: base.GraphDriverName, options: base.GraphDriverOptions, reason: "chosen with STORAGE_DRIVER"}
	case base.GraphDriverName != "":
		return &driverChoice{name: base.GraphDriverName, options: base.GraphDriverOptions, reason: "set in storage.conf"}
	}
	var prior []string
	for _, name := range []string{"overlay", "vfs"} {
		if _, err := os.Stat(filepath.Join(base.GraphRoot, name+"-layers")); err == nil {
			prior = append(prior, name)
		}
	}
	if len(prior) == 1 {
		kind := prior[0]
		if kind == "overlay" && !hasOption(base.GraphDriverOptions, "mount_program") {
			kind = "kernel overlay"
		}
		return &driverChoice{name: prior[0], options: base.GraphDriverOptions,
			reason: kind + ", which the store at " + base.GraphRoot + " already uses"}
	}
	return nil
}

// fallbackDrivers lists the drivers to try, best first.
func fallbackDrivers(options []string) []driverChoice {
	choices := []driverChoice{{name: "overlay", options: options, reason: "kernel overlay works in this user namespace"}}
	if path, err := exec.LookPath("fuse-overlayfs"); err == nil && !hasOption(options, "mount_program") {
		choices = append(choices, driverChoice{name: "overlay", options: append(append([]string{}, options...), "mount_program="+path),
			reason: "kernel overlay is not available; using " + path})
	}
	var vfsOpts []string
	for _, o := range options {
		if !strings.HasPrefix(o, "overlay.") && !isOverlayOnly(o) {
			vfsOpts = append(vfsOpts, o)
		}
	}
	return append(choices, driverChoice{name: "vfs", options: vfsOpts, reason: "neither kernel overlay nor fuse-overlayfs is available"})
}

func isOverlayOnly(option string) bool {
	for _, k := range []string{"mount_program", "mountopt", "skip_mount_home", "force_mask", "size", "additionallayerstore"} {
		if strings.HasPrefix(option, k+"=") {
			return true
		}
	}
	return false
}

func hasOption(options []string, key string) bool {
	for _, o := range options {
		if strings.HasPrefix(o, key+"=") || strings.HasPrefix(o, "overlay."+key+"=") {
			return true
		}
	}
	return false
}

func getStore(base stypes.StoreOptions, c driverChoice, ignoreChown bool) (cstorage.Store, error) {
	o := base
	o.GraphDriverName = c.name
	o.GraphDriverOptions = append([]string{}, c.options...)
	if ignoreChown && !hasOption(o.GraphDriverOptions, "ignore_chown_errors") {
		o.GraphDriverOptions = append(o.GraphDriverOptions, c.name+".ignore_chown_errors=true")
	}
	return cstorage.GetStore(o)
}

// removeEmptyDriverDir undoes what a failed driver probe created, so the next start does
// not mistake it for a store that already uses that driver.
func removeEmptyDriverDir(root, driver string) {
	dir := filepath.Join(root, driver)
	_ = os.Remove(filepath.Join(dir, "l"))
	_ = os.Remove(dir)
}

// Close releases the store; layers still mounted by this process are unmounted.
// A layer mounted on purpose (`forge mount` inside `forge unshare`) stays mounted.
func (s *Store) Close() error {
	_, err := s.store.Shutdown(false)
	if errors.Is(err, cstorage.ErrLayerUsedByContainer) {
		return nil
	}
	return err
}

// SyncVolatile writes back what throwaway containers (FromOptions.Throwaway) wrote, so
// that it is on disk once it returns: a syncfs of the graph root's file system where the
// driver mounts them volatile (overlay that supports it), nothing elsewhere (vfs writes
// through, as before).
func (s *Store) SyncVolatile() error {
	s.volatileOnce.Do(func() {
		if s.store.GraphDriverName() != "overlay" {
			return
		}
		status, err := s.store.Status()
		if err != nil {
			s.volatile = true // unknown: sync to be safe
			return
		}
		for _, kv := range status {
			if kv[0] == "Supports volatile" {
				s.volatile = kv[1] == "true"
			}
		}
	})
	if !s.volatile {
		return nil
	}
	f, err := os.Open(s.store.GraphRoot())
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync the store's file system: %w", err)
	}
	return nil
}

// GraphRoot is the directory the store keeps images and layers in.
func (s *Store) GraphRoot() string { return s.store.GraphRoot() }

// Storage exposes the underlying store to the packages that build on it (commit, build).
func (s *Store) Storage() cstorage.Store { return s.store }

// DriverInfo describes the store for `forge info`.
type DriverInfo struct {
	GraphDriverName   string
	GraphDriverReason string
	GraphRoot         string
	RunRoot           string
	GraphStatus       map[string]string
	ImageCount        int
	ContainerCount    int
}

// Info reports the driver, why it was chosen, and the store's locations.
func (s *Store) Info() (DriverInfo, error) {
	info := DriverInfo{
		GraphDriverName:   s.store.GraphDriverName(),
		GraphDriverReason: s.driverReason,
		GraphRoot:         s.store.GraphRoot(),
		RunRoot:           s.store.RunRoot(),
		GraphStatus:       map[string]string{},
	}
	status, err := s.store.Status()
	if err != nil {
		return info, fmt.Errorf("storage status: %w", err)
	}
	for _, kv := range status {
		info.GraphStatus[kv[0]] = kv[1]
	}
	images, err := s.store.Images()
	if err != nil {
		return info, fmt.Errorf("list images: %w", err)
	}
	containers, err := s.store.Containers()
	if err != nil {
		return info, fmt.Errorf("list containers: %w", err)
	}
	info.ImageCount, info.ContainerCount = len(images), len(containers)
	return info, nil
}

// MaxLayerSize is the limit on how far a layer or an ADD archive may expand (0: none).
func (s *Store) MaxLayerSize() int64 { return s.maxLayerSize }
