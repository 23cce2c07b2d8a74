package storage

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/unshare"
	"golang.org/x/sys/unix"
)

// UnpackInRoot unpacks a tar stream into dir, a directory inside root, on a thread whose
// root directory is root: what storage's chrootarchive does, without re-executing the
// binary. It reads the stream to its end.
func UnpackInRoot(stream io.Reader, root, dir string, opts *archive.TarOptions) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("unpack: %s is not inside %s", dir, root)
	}
	if !threadRootWorks() {
		// A seccomp filter that refuses unshare (Docker's default, chroot isolation): the
		// storage library's re-executed, chrooted helper.
		return chrootarchive.UntarWithRoot(stream, dir, opts, root)
	}
	chunks := newChunkReader(stream)
	err = inRoot(root, func() error { return archive.Unpack(chunks, filepath.Join("/", rel), opts) })
	if err == nil {
		// To the end of the stream, so the read-ahead is done with it.
		_, err = io.Copy(io.Discard, chunks)
	}
	if err != nil {
		chunks.abandon()
	}
	return err
}

// threadRootWorks reports whether a thread can have a root directory of its own here:
// unshare(CLONE_FS) is allowed. It is tried once, on a thread that then ends.
var threadRootWorks = sync.OnceValue(func() bool {
	ok := make(chan bool, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		ok <- unix.Unshare(unix.CLONE_FS) == nil
	}()
	return <-ok
})

// inRoot runs fn on a thread of its own whose root directory is dir, as storage's
// re-executed unpacker is: a link in the layer resolves inside it. The thread is not
// given back to the Go runtime (it ends with fn), and the runtime starts no thread from
// a locked one, so nothing else ever runs with that root.
func inRoot(dir string, fn func() error) error {
	_ = unshare.IsRootless() // reads /proc, which the chroot does not have; cached after
	_, _ = time.Now().Zone() // loads the time zone (a debug log's time) from the host's /etc
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("unshare the file system context: %w", err)
			return
		}
		if err := unix.Chroot(dir); err != nil {
			done <- fmt.Errorf("chroot %s: %w", dir, err)
			return
		}
		if err := unix.Chdir("/"); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// chunkReader reads its source ahead, in large chunks, on a goroutine of its own: the
// unpacking thread (locked, see inRoot) then takes one chunk per wake-up instead of
// waiting on the decompressor for every tar header.
type chunkReader struct {
	ch   chan chunk
	cur  chunk
	off  int
	stop chan struct{}
	done chan struct{} // closed when the read-ahead has stopped reading the source
}

type chunk struct {
	b   []byte
	err error
}

const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

func newChunkReader(src io.Reader) *chunkReader {
	c := &chunkReader{ch: make(chan chunk, 2), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.ch)
		for {
			b := chunkPool.Get().(*[chunkSize]byte)[:]
			n, err := 0, error(nil)
			for n < len(b) && err == nil { // the source's own errors pass unchanged
				var m int
				m, err = src.Read(b[n:])
				n += m
			}
			select {
			case c.ch <- chunk{b: b[:n], err: err}:
			case <-c.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.off == len(c.cur.b) {
		if c.cur.err != nil {
			return 0, c.cur.err
		}
		next, ok := <-c.ch
		if !ok {
			return 0, io.ErrClosedPipe
		}
		if cap(c.cur.b) == chunkSize {
			chunkPool.Put((*[chunkSize]byte)(c.cur.b[:chunkSize]))
		}
		c.cur, c.off = next, 0
	}
	n := copy(p, c.cur.b[c.off:])
	c.off += n
	return n, nil
}

// abandon stops the read-ahead and waits until it has stopped reading the source, which
// the caller may then close: that is after the chunk it is reading, which ends when the
// source has given a chunk, ends or fails (a network source fails when its context is
// cancelled).
func (c *chunkReader) abandon() {
	close(c.stop)
	<-c.done
}
