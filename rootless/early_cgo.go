//go:build linux && cgo

package rootless

// The C constructor in early.c enters forge's user namespace before the Go runtime
// starts, when the outcome is plain: an ordinary user with newuidmap, newgidmap and
// subordinate ID ranges, running a command that opens the store. Go cannot do that in
// its own process (unshare(CLONE_NEWUSER) needs a single thread), so without it every such
// command starts two forge processes, the outer one only to write the ID maps and wait:
// about 10 ms, a third of a cached build. The constructor unshares, has newuidmap and
// newgidmap (forked before the unshare, so outside the namespace) write the maps, and
// executes forge again as namespace root with the variables Enter gives its child; that
// forge finds itself inside and carries on as if Enter had re-executed it. Every other
// case (and --help) returns untouched to Enter, which handles them all. Only glibc passes
// a constructor the arguments it needs, so only a glibc build has it.

// #cgo CFLAGS: -Wall -Wextra
import "C"
