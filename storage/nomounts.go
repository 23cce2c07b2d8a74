package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	stypes "go.podman.io/storage/types"
)

// noMountsDriver is the driver when no mount can be made (chroot isolation): vfs, whose
// layers are plain directories, each a full copy of its tree. A driver named on the
// command line or in STORAGE_DRIVER, or a store already kept by another driver, is an
// error; storage.conf's default is overridden.
func noMountsDriver(base stypes.StoreOptions, opts Options) (driverChoice, error) {
	reason := "chroot isolation: no mount can be made, so layers are plain copies (vfs)"
	named := opts.Driver
	if named == "" {
		named = os.Getenv("STORAGE_DRIVER")
	}
	if named != "" && named != "vfs" {
		return driverChoice{}, fmt.Errorf("storage driver %s needs mounts, which chroot isolation cannot make: use vfs", named)
	}
	if _, err := os.Stat(filepath.Join(base.GraphRoot, "overlay-layers")); err == nil {
		return driverChoice{}, fmt.Errorf("the store at %s uses overlay, which needs mounts that chroot isolation cannot make: "+
			"use another --root (it will use vfs)", base.GraphRoot)
	}
	if named == "vfs" {
		reason = "chosen with --storage-driver or STORAGE_DRIVER; " + reason
	}
	var options []string
	for _, o := range base.GraphDriverOptions {
		if !strings.HasPrefix(o, "overlay.") && !isOverlayOnly(o) {
			options = append(options, o)
		}
	}
	return driverChoice{name: "vfs", options: options, reason: reason}, nil
}
