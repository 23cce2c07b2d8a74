// Command bench runs forge and Buildah side by side on the same Dockerfiles and reports
// medians, forge/Buildah ratios and peak RSS: the harness behind `make bench`.
//
// It runs as root in a work directory that bench/run.sh prepared (an unprivileged user with
// subordinate ID ranges, a local registry that serves the busybox base image, the forge
// binary), generates the remaining fixtures in code (build contexts, a base image with
// 100,000 files), and runs every build as the unprivileged user with a fresh store per case
// and repetition, alternating forge and Buildah. Each case is measured cold (empty store),
// cached (identical rebuild) and with its Dockerfile's last line changed; steps20 and
// redis-like also cold from a registry cache that an earlier forge build filled, and
// base-100k also as root under chroot isolation with the vfs driver.
//
//	bench -work DIR -user NAME -forge BIN -registry HOST:PORT -busybox OCI-ARCHIVE [-reps 3] [-quick] [-no-push] [-no-regcache] [-no-chroot] [-out docs/benchmarks.md]
//
// The benchmark is never part of `make test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// config is what one benchmark run needs; flags fill it in main.
type config struct {
	Work     string   // work directory prepared by bench/run.sh
	User     string   // the unprivileged user the builds run as
	Forge    string   // forge binary, readable by User
	Buildah  string   // buildah binary
	Driver   string   // storage driver of both tools
	Registry string   // HOST:PORT of the local registry
	Busybox  string   // OCI archive of the busybox base image (tests/internal/mkbase)
	Reps     int      // repetitions of every measure
	Quick    bool     // smaller fixtures (development)
	Cases    []string // case names to run (all when empty)
	NoPush   bool     // skip the push measure
	NoReg    bool     // skip the registry-cache measure
	NoChroot bool     // skip the chroot measure (base-100k as root under chroot isolation)
	Drop     bool     // drop the page cache before each cold build (see dropCaches)
	Out      string   // markdown file whose results section is rewritten ("" = none)
}

func main() {
	var c config
	var cases string
	flag.StringVar(&c.Work, "work", "", "work `dir` prepared by bench/run.sh (required)")
	flag.StringVar(&c.User, "user", "forgebench", "unprivileged `user` the builds run as")
	flag.StringVar(&c.Forge, "forge", "", "forge `binary` (required)")
	flag.StringVar(&c.Buildah, "buildah", "/usr/bin/buildah", "buildah `binary`")
	flag.StringVar(&c.Driver, "storage-driver", "overlay", "storage `driver` of both tools")
	flag.StringVar(&c.Registry, "registry", "", "local registry `host:port` (required)")
	flag.StringVar(&c.Busybox, "busybox", "", "busybox base image as an OCI `archive` (required)")
	flag.IntVar(&c.Reps, "reps", 3, "repetitions of every measure")
	flag.BoolVar(&c.Quick, "quick", false, "smaller fixtures, for development")
	flag.StringVar(&cases, "cases", "", "comma-separated `cases` to run (default all)")
	flag.BoolVar(&c.NoPush, "no-push", false, "skip the push measure")
	flag.BoolVar(&c.NoReg, "no-regcache", false, "skip the registry-cache measure")
	flag.BoolVar(&c.NoChroot, "no-chroot", false, "skip the chroot measure")
	flag.BoolVar(&c.Drop, "drop-caches", false, "drop the page cache before each cold build (root)")
	flag.StringVar(&c.Out, "out", "", "markdown `file` whose results section is rewritten")
	flag.Parse()
	if c.Work == "" || c.Forge == "" || c.Registry == "" || c.Busybox == "" || flag.NArg() != 0 || c.Reps < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if cases != "" {
		c.Cases = strings.Split(cases, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}
