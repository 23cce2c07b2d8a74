package rootless

import (
	"fmt"
	"os/exec"
	"strconv"
)

// Mode says how IDs are mapped into forge's user namespace.
type Mode string

const (
	ModeHost   Mode = "host"   // real root on the host: no namespace needed
	ModeFull   Mode = "full"   // newuidmap/newgidmap + /etc/subuid,/etc/subgid ranges
	ModeSingle Mode = "single" // only the caller's own uid/gid mapped (to 0)
)

// hostSetup names what decides the mode: the subordinate ID files and how to find the
// setuid helpers. Tests supply their own.
type hostSetup struct {
	subUID, subGID string
	lookPath       func(file string) (string, error)
}

func defaultHostSetup() hostSetup {
	return hostSetup{subUID: "/etc/subuid", subGID: "/etc/subgid", lookPath: exec.LookPath}
}

// caller is the unprivileged user forge runs as.
type caller struct {
	uid, gid int
	name     string // from /etc/passwd; "" when the uid has no entry
}

// who names the caller the way /etc/subuid would: by name, else by uid.
func (c caller) who() string {
	if c.name != "" {
		return c.name
	}
	return strconv.Itoa(c.uid)
}

// plan is how the outer process maps IDs for its child.
type plan struct {
	mode                 Mode
	reason               string
	caller               caller
	newuidmap, newgidmap string
	uidRange, gidRange   subIDRange
	helpersMissing       bool // newuidmap or newgidmap is not in PATH
	rangesMissing        bool // the caller has no range in /etc/subuid or /etc/subgid
}

// choosePlan picks full mode when both helpers are in PATH and the caller has a range in
// both files, and single mode (with the reason) otherwise. subgid is keyed by user, as
// newgidmap does it, not by group.
func choosePlan(h hostSetup, c caller) plan {
	p := plan{mode: ModeSingle, caller: c}
	uidPath, uidErr := h.lookPath("newuidmap")
	gidPath, gidErr := h.lookPath("newgidmap")
	p.newuidmap, p.newgidmap = uidPath, gidPath
	p.helpersMissing = uidErr != nil || gidErr != nil
	uidR, uidOK, uidReadErr := readSubIDRange(h.subUID, c.name, c.uid)
	gidR, gidOK, gidReadErr := readSubIDRange(h.subGID, c.name, c.uid)
	p.uidRange, p.gidRange = uidR, gidR
	p.rangesMissing = !uidOK || !gidOK
	switch {
	case uidErr != nil:
		p.reason = "newuidmap not found in PATH"
	case gidErr != nil:
		p.reason = "newgidmap not found in PATH"
	case uidReadErr != nil:
		p.reason = uidReadErr.Error()
	case gidReadErr != nil:
		p.reason = gidReadErr.Error()
	case !uidOK:
		p.reason = fmt.Sprintf("no range for %s in %s", c.who(), h.subUID)
	case !gidOK:
		p.reason = fmt.Sprintf("no range for %s in %s", c.who(), h.subGID)
	default:
		p.mode = ModeFull
		p.reason = fmt.Sprintf("newuidmap and a range in %s for %s", h.subUID, c.who())
	}
	return p
}

// warning is the one line logged in single mode: what breaks and how to fix it.
func (p plan) warning() string {
	var fix string
	switch name := p.caller.name; {
	case !p.rangesMissing:
		fix = "install uidmap (newuidmap, newgidmap)"
	case name != "":
		fix = fmt.Sprintf("give %s a range with: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", name, name)
	default:
		fix = fmt.Sprintf("add the line %d:100000:65536 to /etc/subuid and /etc/subgid", p.caller.uid)
	}
	if p.helpersMissing && p.rangesMissing {
		fix = "install uidmap and " + fix
	}
	return fmt.Sprintf("only your own UID is mapped (%s): images with files owned by other users need ignore_chown_errors; fix: %s", p.reason, fix)
}
