package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// scaffold is what chroot isolation puts into a root filesystem for one run instead of
// mounting it, and how to take it out again. Everything is undone only where the command
// left it as forge made it, and directories whose entries forge changed get their
// modification time back, so that comparing the root filesystem before and after the run
// finds only what the command did.
type scaffold struct {
	root  string // host path, symlinks resolved
	log   *slog.Logger
	undos []func() error // run last first
}

// chrootDevices are the /dev nodes a RUN step expects: name, major, minor. They are made
// with mknod (allowed to root in a default container, CAP_MKNOD); where that fails the
// step runs without them.
var chrootDevices = []struct {
	name         string
	major, minor uint32
}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}

// build puts the scaffold for cfg in place; cancelling ctx stops copying volumes.
func (s *scaffold) build(ctx context.Context, cfg Config) error {
	if err := s.devices(); err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	etc := map[string]string{etcResolv: hostFile("/etc/resolv.conf"), etcHosts: hostsFile(hostname, NetworkHost)}
	for _, name := range []string{etcResolv, etcHosts} {
		if err := s.etcFile("/etc/"+name, etc[name]); err != nil {
			return err
		}
	}
	for _, v := range cfg.Volumes {
		if err := s.volume(ctx, v); err != nil {
			return err
		}
	}
	for _, t := range cfg.Tmpfs {
		if err := s.copyIn(ctx, "", t.Dest); err != nil {
			return err
		}
	}
	return nil
}

// undo takes the scaffold out, the last piece first.
func (s *scaffold) undo() error {
	var errs []error
	for i := len(s.undos) - 1; i >= 0; i-- {
		errs = append(errs, s.undos[i]())
	}
	s.undos = nil
	return errors.Join(errs...)
}

func (s *scaffold) push(f func() error) { s.undos = append(s.undos, f) }

// inRoot is the host path of p (a path inside the root filesystem), every symlink
// resolved inside the root.
func (s *scaffold) inRoot(p string) (string, error) {
	return securejoin.SecureJoin(s.root, p)
}

// entryInRoot is the host path of the entry p itself: its directory resolved inside the
// root, its last element not followed (a symlink there stays a symlink).
func (s *scaffold) entryInRoot(p string) (string, error) {
	dir, err := s.inRoot(path.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(p)), nil
}

// ensureDir makes dir (and missing parents) inside the root; what it made is removed
// after the run when empty.
func (s *scaffold) ensureDir(dir string) error {
	parent := s.existingAncestor(path.Clean("/" + dir))
	return s.keepTimes(parent, func() error {
		created, err := makeMountpoint(s.root, dir, true)
		if len(created) > 0 {
			s.push(func() error { return removeMountpoints(s.root, created) })
		}
		return err
	})
}

// existingAncestor is the deepest directory above p (a path inside the root) that exists:
// the one whose entries making p changes.
func (s *scaffold) existingAncestor(p string) string {
	for p = path.Dir(p); p != "/"; p = path.Dir(p) {
		if host, err := s.inRoot(p); err == nil {
			if _, err := os.Lstat(host); err == nil {
				return p
			}
		}
	}
	return "/"
}

// keepTimes runs change, which alters the entries of dir (a path inside the root), and
// arranges that after the run dir gets its times back, unless the command changed its
// entries too. The undo steps pushed by change run between the check and the restore.
func (s *scaffold) keepTimes(dir string, change func() error) error {
	host, err := s.inRoot(dir)
	if err != nil {
		return err
	}
	var before unix.Stat_t
	if err := unix.Lstat(host, &before); err != nil {
		return change() // the directory is made by change itself
	}
	untouched := false
	s.push(func() error {
		if !untouched {
			return nil
		}
		ts := []unix.Timespec{before.Atim, before.Mtim}
		return unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	err = change()
	var after unix.Stat_t
	if unix.Lstat(host, &after) == nil {
		s.push(func() error {
			var now unix.Stat_t
			untouched = unix.Lstat(host, &now) == nil && now.Ino == after.Ino && now.Mtim == after.Mtim
			return nil
		})
	}
	return err
}

// devices makes the /dev nodes that are missing.
func (s *scaffold) devices() error {
	if err := s.ensureDir("/dev"); err != nil {
		return err
	}
	return s.keepTimes("/dev", func() error {
		for _, d := range chrootDevices {
			p := "/dev/" + d.name
			host, err := s.entryInRoot(p)
			if err != nil {
				return err
			}
			if _, err := os.Lstat(host); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := unix.Mknod(host, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
				s.log.Debug("chroot: no device node", "path", p, "err", err)
				continue
			}
			if err := unix.Chmod(host, 0o666); err != nil {
				return fmt.Errorf("chmod %s: %w", p, err)
			}
			s.removeLater(p, host, false)
		}
		return nil
	})
}

// removeLater removes p after the run if it is still the file forge made (same inode)
// and, unless edited is set, unchanged since (same ctime). The files that stand for a
// bind mount (/etc/hosts, /etc/resolv.conf) go even when the command edited them: in a
// build with namespaces the edits land on the mount, never in the layer.
func (s *scaffold) removeLater(p, host string, edited bool) {
	var made unix.Stat_t
	if err := unix.Lstat(host, &made); err != nil {
		return
	}
	s.push(func() error {
		var now unix.Stat_t
		if err := unix.Lstat(host, &now); err != nil || now.Ino != made.Ino || (!edited && now.Ctim != made.Ctim) {
			return nil
		}
		if err := unix.Unlink(host); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	})
}

// etcFile gives the run content at p: a new file when the image has none, or the
// image's regular file with its content swapped for the run and put back afterwards. A
// symlink or anything else the image has there is left alone.
func (s *scaffold) etcFile(p, content string) error {
	if err := s.ensureDir(path.Dir(p)); err != nil {
		return err
	}
	host, err := s.entryInRoot(p)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.keepTimes(path.Dir(p), func() error {
			if err := os.WriteFile(host, []byte(content), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
			s.removeLater(p, host, true)
			return nil
		})
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return nil
	}
	return s.swapContent(p, host, content)
}

// swapContent writes content into the existing file host and puts the original content
// and times back after the run, also when the command edited it (as a bind mount would
// have taken the edits), unless the command replaced the file with another.
func (s *scaffold) swapContent(p, host, content string) error {
	orig, err := os.ReadFile(host)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	var before unix.Stat_t
	if err := unix.Lstat(host, &before); err != nil {
		return err
	}
	if err := os.WriteFile(host, []byte(content), 0); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	var made unix.Stat_t
	if err := unix.Lstat(host, &made); err != nil {
		return err
	}
	s.push(func() error {
		var now unix.Stat_t
		if err := unix.Lstat(host, &now); err != nil || now.Ino != made.Ino {
			return nil
		}
		if err := os.WriteFile(host, orig, 0); err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{before.Atim, before.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	})
	return nil
}

// volume copies what a mount would show into the root filesystem. A writable volume
// resolved inside a Root (a RUN cache mount) gets what the command left there copied
// back after the run; other writable volumes lose what the command wrote.
func (s *scaffold) volume(ctx context.Context, v Volume) error {
	src := v.Source
	if v.Root != "" {
		var err error
		if src, err = securejoin.SecureJoin(v.Root, v.Source); err != nil {
			return fmt.Errorf("mount %s: %w", v.Dest, err)
		}
	}
	if err := s.copyIn(ctx, src, v.Dest); err != nil {
		return err
	}
	if v.Root != "" && !v.ReadOnly {
		s.push(func() error { return s.copyBack(v.Dest, src) })
	}
	return nil
}

// copyBack replaces the contents of the directory src with those of dest (a path inside
// the root), before dest is removed.
func (s *scaffold) copyBack(dest, src string) error {
	host, err := s.inRoot(dest)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(host); err != nil || !fi.IsDir() {
		return nil // the command removed or replaced it: the cache stays as it was
	}
	if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
		return nil
	}
	if err := clearDir(src); err != nil {
		return fmt.Errorf("keep mount %s: %w", dest, err)
	}
	// Part of the undo, which finishes even when the run was cancelled.
	if err := copyTree(context.Background(), host, src); err != nil {
		return fmt.Errorf("keep mount %s: %w", dest, err)
	}
	return nil
}

// copyIn puts a copy of src (a file or directory; "" for an empty directory) at dest
// for the run and removes it afterwards. dest must be missing or an empty directory:
// covering what the image has there would need a mount.
func (s *scaffold) copyIn(ctx context.Context, src, dest string) error {
	host, err := s.inRoot(dest)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dest, err)
	}
	srcDir := true
	if src != "" {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("mount %s: %w", dest, err)
		}
		srcDir = fi.IsDir()
	}
	fi, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.ensureDir(path.Dir(path.Clean("/" + dest))); err != nil {
			return err
		}
		return s.keepTimes(path.Dir(path.Clean("/"+dest)), func() error {
			s.push(func() error { return s.inRootDo(dest, os.RemoveAll) })
			if !srcDir {
				return copyFile(src, host)
			}
			if err := os.Mkdir(host, 0o755); err != nil {
				return fmt.Errorf("mount %s: %w", dest, err)
			}
			return copyTree(ctx, src, host)
		})
	case err != nil:
		return fmt.Errorf("mount %s: %w", dest, err)
	case !fi.IsDir() || !srcDir || !emptyDir(host):
		return fmt.Errorf("mount at %s: the image has files there, and showing others in their place needs a mount: %w", dest, ErrNeedsNamespaces)
	}
	return s.keepTimes(dest, func() error {
		s.push(func() error { return s.inRootDo(dest, clearDir) })
		return copyTree(ctx, src, host)
	})
}

// inRootDo calls fn with the host path of p, resolved again inside the root: the command
// may have replaced a directory on the way with a symlink, which must not lead outside.
func (s *scaffold) inRootDo(p string, fn func(string) error) error {
	host, err := s.inRoot(p)
	if err != nil {
		return err
	}
	return fn(host)
}

func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}

// clearDir removes everything inside dir.
func clearDir(dir string) error {
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

// copyTree copies the contents of the directory src ("" for none) into the existing
// directory dst, keeping modes, owners and times; symlinks are copied as symlinks.
func copyTree(ctx context.Context, src, dst string) error {
	if src == "" {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case d.Type().IsRegular():
			return copyFile(p, target)
		default:
			return nil // devices, sockets, pipes: not copied
		}
		return copyAttrs(p, target)
	})
}

// copyFile copies the regular file src to the new file dst with its mode, owner and times.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return copyAttrs(src, dst)
}

// copyAttrs gives dst the owner, mode and times of src (no symlink followed).
func copyAttrs(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}
