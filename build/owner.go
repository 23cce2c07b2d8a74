package build

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

type idPair struct{ uid, gid int }

// resolveOwner turns --chown USER[:GROUP] into IDs, looking names up in the container's
// /etc/passwd and /etc/group (read inside its root). A user alone also sets that user's
// primary group; the default is 0:0, as Docker's.
func resolveOwner(rootfs, spec string) (idPair, error) {
	if spec == "" {
		return idPair{}, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" || hasGroup && group == "" {
		return idPair{}, fmt.Errorf("--chown %q: want USER[:GROUP]", spec)
	}
	uid, primary, err := lookupID(rootfs, "/etc/passwd", user)
	if err != nil {
		return idPair{}, fmt.Errorf("--chown %q: %w", spec, err)
	}
	gid := primary
	if hasGroup {
		if gid, _, err = lookupID(rootfs, "/etc/group", group); err != nil {
			return idPair{}, fmt.Errorf("--chown %q: %w", spec, err)
		}
	}
	return idPair{uid: uid, gid: gid}, nil
}

// lookupID finds a name (or number) in a passwd- or group-format file of the container.
// For passwd it also returns the user's primary group (the ID itself for a bare number).
func lookupID(rootfs, file, name string) (id, primary int, err error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, 0, fmt.Errorf("invalid ID %d", n)
		}
		if file == "/etc/passwd" {
			if _, g, err := lookupName(rootfs, file, name, true); err == nil {
				return n, g, nil
			}
		}
		return n, n, nil
	}
	return lookupName(rootfs, file, name, false)
}

func lookupName(rootfs, file, name string, byID bool) (int, int, error) {
	host, err := securejoin.SecureJoin(rootfs, file)
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Open(host)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("no %s in the container to look up %q", file, name)
	} else if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if byID && fields[2] != name || !byID && fields[0] != name {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		primary := id
		if len(fields) > 3 {
			if g, err := strconv.Atoi(fields[3]); err == nil {
				primary = g
			}
		}
		return id, primary, nil
	}
	return 0, 0, fmt.Errorf("%q not found in the container's %s", name, file)
}
