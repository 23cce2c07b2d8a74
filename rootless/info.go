package rootless

import (
	"fmt"
	"os"
	"strconv"
)

// Info describes the identity mapping in use, for `forge info` and for the storage layer.
type Info struct {
	Mode   Mode   `json:"mode"`
	Reason string `json:"reason"` // one line: why this mode
	// UID and GID are the caller's real host uid and gid.
	UID    int     `json:"uid"`
	GID    int     `json:"gid"`
	UIDMap []IDMap `json:"uidMap"` // from /proc/self/uid_map
	GIDMap []IDMap `json:"gidMap"` // from /proc/self/gid_map
}

// Current describes the mapping of the running process. It is valid inside forge's
// namespace (it reads the variables the outer process set and /proc/self/*_map) and as
// real root; as an ordinary user outside the namespace it is an error.
func Current() (Info, error) {
	uidMap, err := readIDMap("/proc/self/uid_map")
	if err != nil {
		return Info{}, err
	}
	gidMap, err := readIDMap("/proc/self/gid_map")
	if err != nil {
		return Info{}, err
	}
	if os.Geteuid() != 0 {
		return Info{}, fmt.Errorf("uid %d is outside forge's user namespace: call Enter first", os.Geteuid())
	}
	info := Info{UIDMap: uidMap, GIDMap: gidMap}
	uidEnv, gidEnv := os.Getenv(envRootlessUID), os.Getenv(envRootlessGID)
	switch {
	case isIdentity(uidMap):
		info.Mode, info.Reason = ModeHost, "running as root on the host"
		uidEnv, gidEnv = "", ""
	case os.Getenv(envConfigured) != "done":
		info.Mode, info.Reason = ModeHost, "running as root in a user namespace that forge did not create"
		uidEnv, gidEnv = "", ""
	default:
		info.Mode, info.Reason = insideMode(uidMap)
	}
	info.UID = hostID(uidEnv, uidMap, os.Getuid())
	info.GID = hostID(gidEnv, gidMap, os.Getgid())
	return info, nil
}

// insideMode reads the mode the outer process chose, or infers it from the map when
// another tool (e.g. podman unshare) made the namespace.
func insideMode(uidMap []IDMap) (Mode, string) {
	mode, reason := Mode(os.Getenv(envMode)), os.Getenv(envReason)
	if mode == ModeFull || mode == ModeSingle {
		return mode, reason
	}
	reason = "user namespace made by another tool (" + envConfigured + "=done)"
	if len(uidMap) == 1 && uidMap[0].Size == 1 {
		return ModeSingle, reason
	}
	return ModeFull, reason
}

// hostID is the caller's host ID: the value the outer process recorded in env, else id
// translated through the map.
func hostID(env string, m []IDMap, id int) int {
	if v, err := strconv.Atoi(env); err == nil {
		return v
	}
	if h, ok := toHost(m, id); ok {
		return h
	}
	return id
}
