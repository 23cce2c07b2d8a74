package build

import (
	"bytes"
	"io"
	"strconv"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// lineOutput puts the output of stages that run at once onto the build's writers whole
// lines at a time, each line prefixed with its stage, so lines never mix.
type lineOutput struct{ mu sync.Mutex }

// maxLine is how long a line without a newline (a progress bar redrawn with \r) may grow
// before it is written anyway.
const maxLine = 64 << 10

// writer returns a writer that prefixes the lines written to w; io.Discard stays as it is.
func (o *lineOutput) writer(w io.Writer, prefix string) io.Writer {
	if w == io.Discard {
		return w
	}
	return &lineWriter{out: o, w: w, prefix: []byte(prefix)}
}

// lineWriter is one stage's view of one of the build's writers. It is safe for
// concurrent use (a RUN step's stdout and stderr go to the same one).
type lineWriter struct {
	out    *lineOutput
	w      io.Writer
	prefix []byte
	mu     sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < maxLine {
			break
		}
		end := len(l.buf)
		if i >= 0 {
			end = i + 1
		}
		if err := l.emit(l.buf[:end]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[end:]...)
	}
	return len(p), nil
}

// flush writes a last line that has no newline.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_ = l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) error {
	out := make([]byte, 0, len(l.prefix)+len(line)+1)
	out = append(append(out, l.prefix...), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	_, err := l.w.Write(out)
	return err
}

// stagePrefix names a stage in prefixed output: its name, or stage-N as BuildKit does.
func stagePrefix(st *instructions.Stage, i int) string {
	if st.Name != "" {
		return st.Name
	}
	return "stage-" + strconv.Itoa(i)
}
