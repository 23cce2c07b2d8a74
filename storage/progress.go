package storage

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/go-units"
	"go.podman.io/image/v5/types"
)

const progressInterval = 500 * time.Millisecond

// transferCounter sums what a copy moved, for the one-line summary after a pull or push.
type transferCounter struct {
	out    io.Writer
	seen   *activity
	events chan types.ProgressProperties
	done   sync.WaitGroup
	copied int
	reused int
	bytes  uint64
}

func newTransferCounter(out io.Writer, seen *activity) *transferCounter {
	c := &transferCounter{out: out, seen: seen, events: make(chan types.ProgressProperties, 16)}
	c.done.Add(1)
	go c.count()
	return c
}

func (c *transferCounter) count() {
	defer c.done.Done()
	for p := range c.events {
		c.seen.touch()
		switch p.Event {
		case types.ProgressEventDone:
			c.copied++
			c.bytes += p.Offset
		case types.ProgressEventSkipped:
			c.reused++
		}
	}
}

// finish closes the event stream (image/v5 never closes it) and prints the summary.
func (c *transferCounter) finish(ok bool) {
	close(c.events)
	c.done.Wait()
	if c.out == nil || !ok {
		return
	}
	fmt.Fprintf(c.out, "Transferred %d %s (%s), reused %d already present\n",
		c.copied, plural(c.copied, "blob", "blobs"), units.HumanSize(float64(c.bytes)), c.reused)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
