package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The chroot measure (forge only): base-100k built as root with --isolation chroot and
// the vfs driver, the mode forge falls back to in a container without privileges. Its
// changed build is one RUN step touching one file of the big base, the figure that goes
// next to the same step in rootless mode with overlay.
const (
	caseChroot          = "base-100k"
	measureChrootCold   = "chroot-cold"
	measureChrootChange = "chroot-changed"
)

// chrootSlowBuild is the build time above which the measure stops after its first
// repetition: with vfs every working container is a full copy of the base, and more
// repetitions of minute-long builds would dominate the run.
const chrootSlowBuild = 90 * time.Second

// runChroot measures base-100k under chroot isolation: per repetition, in a fresh store
// owned by root, the cold build of Dockerfile.v1, then the changed build of Dockerfile.v2.
func (b *bench) runChroot(ctx context.Context, bc benchCase) error {
	fmt.Printf("== %s, chroot isolation: as root, --isolation chroot --storage-driver vfs\n", bc.Name)
	for rep := range b.cfg.Reps {
		slowest, err := b.runChrootOnce(ctx, bc, rep)
		if err != nil {
			return err
		}
		if slowest > chrootSlowBuild && rep+1 < b.cfg.Reps {
			fmt.Printf("    a chroot build took %s (over %s): no more repetitions of this measure\n",
				slowest.Round(time.Second), chrootSlowBuild)
			break
		}
	}
	return ctx.Err()
}

// runChrootOnce runs one repetition and returns the wall time of its slowest build; its
// error is only one that stops the benchmark.
func (b *bench) runChrootOnce(ctx context.Context, bc benchCase, rep int) (time.Duration, error) {
	st, err := b.rootStore(fmt.Sprintf("%s-chroot-%d", bc.Name, rep))
	if err != nil {
		return 0, err
	}
	defer b.done(st)
	dir := filepath.Join(b.cfg.Work, "cases", bc.Name)
	contextDir := filepath.Join(b.cfg.Work, "ctx", bc.Context)
	var slowest time.Duration
	for _, m := range []string{measureChrootCold, measureChrootChange} {
		if m == measureChrootCold && b.cfg.Drop {
			if err := b.dropCaches(contextDir); err != nil {
				return slowest, err
			}
		}
		v := 1
		if m == measureChrootChange {
			v = 2
		}
		dockerfile := filepath.Join(dir, fmt.Sprintf("Dockerfile.v%d", v))
		inv := invocation{Log: fmt.Sprintf("%s-chroot-%d-%s.log", bc.Name, rep, m), AsRoot: true,
			Argv: chrootBud(b.cfg.Forge, st, "localhost/bench-"+bc.Name, dockerfile, contextDir),
			Env:  rootEnv(st)}
		s, err := b.r.run(ctx, inv)
		b.res.add(key{bc.Name, m, toolForge}, s, err)
		if err != nil {
			break // the changed build needs the cold one
		}
		slowest = max(slowest, s.Wall)
	}
	return slowest, ctx.Err()
}

// chrootBud returns the argv of forge's build under chroot isolation with the vfs driver.
func chrootBud(bin string, st store, tag, dockerfile, contextDir string) []string {
	argv := tool{Name: toolForge, Bin: bin, Driver: "vfs"}.bud(st, tag, dockerfile, contextDir)
	return append([]string{bin, "--isolation", "chroot"}, argv[1:]...)
}

// rootEnv keeps root's home, runtime and temporary directories in its store, away from
// the unprivileged user's.
func rootEnv(st store) []string {
	return []string{"HOME=" + st.Home, "XDG_RUNTIME_DIR=" + filepath.Join(st.Dir, "run"),
		"TMPDIR=" + filepath.Join(st.Dir, "tmp")}
}

// rootStore returns an empty store directory owned by root, with the directories rootEnv
// names.
func (b *bench) rootStore(name string) (store, error) {
	st := newStore(filepath.Join(b.cfg.Work, "stores", name))
	if err := os.RemoveAll(st.Dir); err != nil {
		return st, err
	}
	for _, d := range []string{st.Home, filepath.Join(st.Dir, "run"), filepath.Join(st.Dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return st, err
		}
	}
	return st, nil
}

// writeChroot prints the chroot table: base-100k's one RUN step (changed) in rootless mode
// with overlay and under chroot isolation with vfs, their ratio, and the cold build under
// chroot isolation.
func (b *bench) writeChroot(md *strings.Builder) {
	if !b.ranMeasure(caseChroot, measureChrootCold) {
		return
	}
	rootless, chroot, cold := b.chrootStats()
	reps := fmt.Sprintf("%d", chroot.N+chroot.Failed)
	if done := cold.N + cold.Failed; done < b.cfg.Reps {
		reps = fmt.Sprintf("%d of %d: a build took over %.0f s", done, b.cfg.Reps, chrootSlowBuild.Seconds())
	}
	files := sizesFor(b.cfg.Quick).BaseFiles
	md.WriteString("| forge, chroot isolation | one RUN step (changed), rootless overlay s | the same step, chroot vfs s | chroot/rootless | chroot CPU s | chroot RSS MB | chroot cold s | chroot repetitions |\n")
	md.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(md, "| %s (%d files) | %s | %s | %s | %s | %s | %s | %s |\n\n", caseChroot, files, rootless.seconds(),
		chroot.seconds(), ratioText(ratio(chroot, rootless, false)), chroot.cpuSeconds(), chroot.megabytes(), cold.seconds(), reps)
	if v, ok := ratio(chroot, rootless, false); ok {
		fmt.Fprintf(md, "- informational, no goal: one RUN step touching one file of a %d-file base takes %.0fx as long under chroot isolation (vfs) as in rootless mode (overlay)\n\n",
			files, v)
	}
}

// chrootStats returns base-100k's changed build in rootless mode, and its changed and
// cold builds under chroot isolation.
func (b *bench) chrootStats() (rootless, chroot, cold stat) {
	return b.stat(key{caseChroot, measureChanged, toolForge}), b.stat(key{caseChroot, measureChrootChange, toolForge}),
		b.stat(key{caseChroot, measureChrootCold, toolForge})
}
