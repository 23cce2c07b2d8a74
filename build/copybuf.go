package build

import (
	"io"
	"sync"
)

// copyBuffers are reused across the files of a step: io.Copy from an *os.File into a
// writer without ReadFrom (a hash, a tar writer) allocates a fresh 32 KiB buffer per
// file, which for a 20,000-file context is over half a gigabyte of garbage per pass.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// copyData copies src to dst through a pooled buffer.
func copyData(dst io.Writer, src io.Reader) (int64, error) {
	b := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(b)
	// Hide WriteTo and ReadFrom: either would bypass the buffer and allocate its own.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *b)
}
