package rootless

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// IDMap is one line of a user namespace's uid_map or gid_map: the Size IDs starting at
// ContainerID inside the namespace are the IDs starting at HostID outside it.
type IDMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// subIDRange is a range of subordinate IDs from /etc/subuid or /etc/subgid.
type subIDRange struct {
	Start, Count uint32
}

// readSubIDRange returns the first range that the subordinate ID file at path grants to
// the user called name (may be empty) or with the numeric ID id. A missing file grants none.
func readSubIDRange(path, name string, id int) (r subIDRange, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return subIDRange{}, false, nil
	}
	if err != nil {
		return subIDRange{}, false, err
	}
	defer f.Close()
	r, found, err = findSubIDRange(f, name, id)
	if err != nil {
		return subIDRange{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	return r, found, nil
}

// findSubIDRange scans lines of the form "owner:start:count", where owner is a user name
// or a numeric ID, and returns the first range owned by name or id. Blank lines, comments
// and malformed lines are skipped, as shadow's own tools do.
func findSubIDRange(rd io.Reader, name string, id int) (subIDRange, bool, error) {
	uid := strconv.Itoa(id)
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		owner, r, ok := parseSubIDLine(sc.Text())
		if ok && ((name != "" && owner == name) || owner == uid) {
			return r, true, nil
		}
	}
	return subIDRange{}, false, sc.Err()
}

// parseSubIDLine parses one "owner:start:count" line; ok is false for anything else.
func parseSubIDLine(line string) (owner string, r subIDRange, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", subIDRange{}, false
	}
	fields := strings.Split(line, ":")
	if len(fields) != 3 || fields[0] == "" {
		return "", subIDRange{}, false
	}
	start, err1 := strconv.ParseUint(fields[1], 10, 32)
	count, err2 := strconv.ParseUint(fields[2], 10, 32)
	if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32 {
		return "", subIDRange{}, false
	}
	return fields[0], subIDRange{Start: uint32(start), Count: uint32(count)}, true
}

// readIDMap reads a /proc/PID/uid_map or gid_map file.
func readIDMap(path string) ([]IDMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := parseIDMap(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// parseIDMap parses the kernel's "ContainerID HostID Size" lines.
func parseIDMap(rd io.Reader) ([]IDMap, error) {
	var maps []IDMap
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", sc.Text())
		}
		var n [3]uint32
		for i, f := range fields {
			v, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q: %w", sc.Text(), err)
			}
			n[i] = uint32(v)
		}
		maps = append(maps, IDMap{ContainerID: n[0], HostID: n[1], Size: n[2]})
	}
	return maps, sc.Err()
}

// isIdentity reports whether m is the initial namespace's map (every ID maps to itself).
func isIdentity(m []IDMap) bool {
	return len(m) == 1 && m[0] == IDMap{ContainerID: 0, HostID: 0, Size: ^uint32(0)}
}

// toHost translates id inside the namespace described by m to the ID outside it.
func toHost(m []IDMap, id int) (int, bool) {
	for _, e := range m {
		if id >= int(e.ContainerID) && id-int(e.ContainerID) < int(e.Size) {
			return int(e.HostID) + id - int(e.ContainerID), true
		}
	}
	return 0, false
}

// runIDMapHelper runs newuidmap or newgidmap for pid: namespace ID 0 is the caller's own
// id, and 1 onwards are the subordinate range r.
func runIDMapHelper(ctx context.Context, helper string, pid, id int, r subIDRange) error {
	args := []string{
		strconv.Itoa(pid),
		"0", strconv.Itoa(id), "1",
		"1", strconv.FormatUint(uint64(r.Start), 10), strconv.FormatUint(uint64(r.Count), 10),
	}
	out, err := exec.CommandContext(ctx, helper, args...).CombinedOutput()
	if err != nil {
		cmdline := helper + " " + strings.Join(args, " ")
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("%s: %w: %s", cmdline, err, msg)
		}
		return fmt.Errorf("%s: %w", cmdline, err)
	}
	return nil
}
