package evil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Guard is a host directory that hostile input aims at. Sentinel holds files that must
// not change (a secret, a directory, a symlink); Target is a directory where nothing may
// appear; Marker is part of every name a hostile entry creates, so that Escapes can look
// for such files anywhere below the scanned directories, outside the skipped ones (the
// stores, where contained files are expected).
type Guard struct {
	Dir, Sentinel, Target string
	Marker                string
	Secret                string // content of Sentinel/secret
	Scan, Skip            []string
	before                map[string]string
}

var guardCount atomic.Int64

// NewGuard makes a guard in a new directory below parent. Scan are the directories
// Escapes searches for the marker; skip are directories it does not enter.
func NewGuard(parent string, scan, skip []string) (*Guard, error) {
	dir, err := os.MkdirTemp(parent, "hostile-guard-")
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	g := &Guard{
		Dir: dir, Sentinel: filepath.Join(dir, "sentinel"), Target: filepath.Join(dir, "escape-target"),
		Marker: fmt.Sprintf("forge-escape-%d-%d", now, guardCount.Add(1)),
		Secret: fmt.Sprintf("host secret %d\n", now), Scan: scan, Skip: skip,
	}
	for _, d := range []string{g.Target, filepath.Join(g.Sentinel, "d")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			return nil, err
		}
	}
	for name, content := range map[string]string{"secret": g.Secret, "d/file": "keep me\n"} {
		if err := os.WriteFile(filepath.Join(g.Sentinel, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink("d/file", filepath.Join(g.Sentinel, "link")); err != nil {
		return nil, err
	}
	if g.before, err = g.snapshot(); err != nil {
		return nil, err
	}
	return g, nil
}

// Name is a file name with the guard's marker.
func (g *Guard) Name(suffix string) string { return g.Marker + "-" + suffix }

// Escapes lists what changed on the host since NewGuard: a sentinel file changed, gained a
// hard link or went away, something appeared in the target directory, or a file with
// the marker exists outside the skipped directories.
func (g *Guard) Escapes() []string {
	var out []string
	after, err := g.snapshot()
	if err != nil {
		return []string{"ESCAPE? the sentinel directory cannot be read: " + err.Error()}
	}
	for p, was := range g.before {
		if now, ok := after[p]; !ok {
			out = append(out, "ESCAPE: the host file "+p+" was removed")
		} else if now != was {
			out = append(out, fmt.Sprintf("ESCAPE: the host file %s changed:\nbefore %s\nafter  %s", p, was, now))
		}
	}
	for p := range after {
		if _, ok := g.before[p]; !ok {
			out = append(out, "ESCAPE: a file appeared on the host: "+p)
		}
	}
	if entries, err := os.ReadDir(g.Target); err != nil || len(entries) != 0 {
		out = append(out, fmt.Sprintf("ESCAPE: files appeared in the host directory %s: %d (err %v)", g.Target, len(entries), err))
	}
	for _, found := range g.find() {
		out = append(out, "ESCAPE: a file with the hostile marker is on the host, outside the store: "+found)
	}
	return out
}

// snapshot records every file below the sentinel directory: type, mode, size, link
// count, content digest, link target.
func (g *Guard) snapshot() (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(g.Sentinel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v nlink=%d size=%d mtime=%d", fi.Mode(), st.Nlink, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " sha256=" + hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[p] = desc
		return nil
	})
	return out, err
}

// find walks the scanned directories for the marker, skipping the skipped ones and any
// directory it cannot read (other users' files).
func (g *Guard) find() []string {
	var found []string
	for _, root := range g.Scan {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fs.SkipDir
			}
			for _, s := range g.Skip {
				if p == s {
					return fs.SkipDir
				}
			}
			if strings.Contains(d.Name(), g.Marker) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}
