package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The three measures of every case.
const (
	measureCold    = "cold"
	measureCached  = "cached"
	measureChanged = "changed"
)

var measures = []string{measureCold, measureCached, measureChanged}

// key names the samples of one case, measure and tool.
type key struct{ Case, Measure, Tool string }

// results collects samples and failures.
type results struct {
	samples  map[key][]sample
	failures map[key]int
}

func newResults() *results {
	return &results{samples: map[key][]sample{}, failures: map[key]int{}}
}

func (r *results) add(k key, s sample, err error) {
	if err != nil {
		r.failures[k]++
		fmt.Printf("    %-12s %-8s %-8s FAILED: %v\n", k.Case, k.Tool, k.Measure, err)
		return
	}
	r.samples[k] = append(r.samples[k], s)
	fmt.Printf("    %-12s %-8s %-8s %7.2fs  cpu %6.2fs  %5d MB  (others' cpu %.2fs, load %.1f)\n", k.Case, k.Tool, k.Measure,
		s.Wall.Seconds(), s.CPU().Seconds(), s.MaxRSS/1024, s.Others.Seconds(), s.Load)
}

// bench is one benchmark run in progress.
type bench struct {
	cfg   config
	r     *runner
	tools []tool
	res   *results
	used  []string // store directories to delete at the end
}

// minFreeToKeep is the free space below which stores are deleted as soon as they are used.
const minFreeToKeep = 20 << 30

// done deletes a used store, or (with enough free space) leaves it for removeStores.
// Deleting thousands of files right before the other tool's build would slow that build:
// on ext4 without a journal, allocating inodes scans past recently deleted ones.
func (b *bench) done(st store) {
	var fs syscall.Statfs_t
	if syscall.Statfs(st.Dir, &fs) == nil && int64(fs.Bavail)*fs.Bsize >= minFreeToKeep {
		b.used = append(b.used, st.Dir)
		return
	}
	os.RemoveAll(st.Dir)
}

// removeStores deletes the stores done kept, after the measurements.
func (b *bench) removeStores() {
	for _, dir := range b.used {
		os.RemoveAll(dir)
	}
	b.used = nil
}

func run(ctx context.Context, c config) error {
	r, err := newRunner(c.Work, c.User)
	if err != nil {
		return err
	}
	s := sizesFor(c.Quick)
	cases, err := selectCases(casesFor(c.Registry, s), c.Cases)
	if err != nil {
		return err
	}
	b := &bench{cfg: c, r: r, res: newResults(), tools: []tool{
		{Name: toolForge, Bin: c.Forge, Driver: c.Driver},
		{Name: toolBuildah, Bin: c.Buildah, Driver: c.Driver},
	}}
	start := time.Now()
	if err := b.prepare(ctx, s, cases); err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	fmt.Printf("fixtures ready in %s\n", time.Since(start).Round(time.Second))
	if c.Drop {
		if err := b.dropCaches(""); err != nil {
			fmt.Printf("cannot drop the page cache (%v): measuring without\n", err)
			b.cfg.Drop = false
		}
	}
	for _, bc := range cases {
		if err := b.runCase(ctx, bc); err != nil {
			return err
		}
	}
	for _, bc := range cases {
		if c.NoReg || !bc.RegCache {
			continue
		}
		if err := b.runRegCache(ctx, bc); err != nil {
			return err
		}
	}
	for _, bc := range cases {
		if c.NoChroot || bc.Name != caseChroot {
			continue
		}
		if err := b.runChroot(ctx, bc); err != nil {
			return err
		}
	}
	if !c.NoPush {
		if err := b.runPush(ctx, s); err != nil {
			return err
		}
	}
	fmt.Printf("measured in %s\n\n", time.Since(start).Round(time.Second))
	b.removeStores()
	return b.report(ctx, cases, s, time.Since(start))
}

// prepare generates the contexts, Dockerfiles and base images the cases need and pushes
// the base images to the registry.
func (b *bench) prepare(ctx context.Context, s sizes, cases []benchCase) error {
	w := b.cfg.Work
	if err := os.MkdirAll(filepath.Join(w, "ctx", contextEmpty), 0o755); err != nil {
		return err
	}
	if err := makeContext(filepath.Join(w, "ctx", contextCopy), s.CopyFiles, s.CopyBytes); err != nil {
		return fmt.Errorf("copy context: %w", err)
	}
	for _, bc := range append(cases, runBigCase(b.cfg.Registry, s)) {
		for v := 1; v <= 2; v++ {
			dir := filepath.Join(w, "cases", bc.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("Dockerfile.v%d", v)), []byte(bc.Dockerfile(v)), 0o644); err != nil {
				return err
			}
		}
	}
	base := filepath.Join(w, "fixtures", "base100k")
	if err := makeBase(b.cfg.Busybox, base, s.BaseFiles); err != nil {
		return fmt.Errorf("base image: %w", err)
	}
	for src, dest := range map[string]string{
		"oci-archive:" + b.cfg.Busybox: "library/busybox:latest",
		"oci:" + base + ":latest":      "bench/base100k:latest",
	} {
		argv := []string{"skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", src, "docker://" + b.cfg.Registry + "/" + dest}
		log := "skopeo-" + strings.NewReplacer("/", "-", ":", "-").Replace(dest) + ".log"
		if _, err := b.r.run(ctx, invocation{Log: log, Argv: argv}); err != nil {
			return err
		}
	}
	return nil
}

// runBigCase is the run-big case, which the push measure builds.
func runBigCase(reg string, s sizes) benchCase {
	for _, bc := range casesFor(reg, s) {
		if bc.Name == "run-big" {
			return bc
		}
	}
	panic("no run-big case")
}

// runCase measures one case: each repetition runs forge, then Buildah (A B A B), each in a
// fresh store: a cold build, the identical rebuild, the build with the last line changed.
func (b *bench) runCase(ctx context.Context, bc benchCase) error {
	fmt.Printf("== %s: %s\n", bc.Name, bc.Stresses)
	for rep := range b.cfg.Reps {
		for _, t := range b.tools {
			if err := b.runCaseOnce(ctx, bc, t, rep); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

func (b *bench) runCaseOnce(ctx context.Context, bc benchCase, t tool, rep int) error {
	st, err := b.freshStore(fmt.Sprintf("%s-%s-%d", bc.Name, t.Name, rep))
	if err != nil {
		return err
	}
	defer b.done(st)
	dir := filepath.Join(b.cfg.Work, "cases", bc.Name)
	contextDir := filepath.Join(b.cfg.Work, "ctx", bc.Context)
	for _, m := range measures {
		if m == measureCold && b.cfg.Drop {
			if err := b.dropCaches(contextDir); err != nil {
				return err
			}
		}
		v := 1
		if m == measureChanged {
			v = 2
		}
		dockerfile := filepath.Join(dir, fmt.Sprintf("Dockerfile.v%d", v))
		inv := invocation{
			Log:  fmt.Sprintf("%s-%s-%d-%s.log", bc.Name, t.Name, rep, m),
			Argv: t.bud(st, "localhost/bench-"+bc.Name, dockerfile, contextDir),
			Env:  t.env(st),
		}
		s, err := b.r.run(ctx, inv)
		b.res.add(key{bc.Name, m, t.Name}, s, err)
		if err != nil {
			break // the later measures need the earlier builds
		}
	}
	return ctx.Err()
}

// dropCaches writes back and drops the page cache, then reads the context and the tools'
// binaries back in, so that every cold build starts from the same state. On ext4 without
// a journal (as on the machine the first tables came from), creating a file scans past
// inodes deleted in the last minutes whose inode table block is still cached, and the
// files deleted by earlier builds would otherwise slow file-heavy builds several times.
func (b *bench) dropCaches(contextDir string) error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200); err != nil {
		return err
	}
	warm := []string{b.cfg.Forge, b.cfg.Buildah}
	if contextDir != "" {
		warm = append(warm, contextDir)
	}
	for _, root := range warm {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(io.Discard, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("read back %s: %w", root, err)
		}
	}
	return nil
}

// freshStore returns an empty store directory owned by the unprivileged user.
func (b *bench) freshStore(name string) (store, error) {
	st := newStore(filepath.Join(b.cfg.Work, "stores", name))
	if err := os.RemoveAll(st.Dir); err != nil {
		return st, err
	}
	if err := b.r.userDir(filepath.Join(b.cfg.Work, "stores")); err != nil {
		return st, err
	}
	return st, firstErr(b.r.userDir(st.Dir), b.r.userDir(st.Home))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
