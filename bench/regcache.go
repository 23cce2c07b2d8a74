package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The registry-cache measure (forge only): a cold build in an empty store whose every step
// comes from a warm --cache-from repository, against the case's cold build and its local
// cached rebuild.
const (
	measureCacheTo  = "cache-to" // the one build that fills the repository (--cache-to)
	measureRegistry = "registry" // the timed builds from it (--cache-from)
)

// cacheRepo is the registry repository that holds a case's step cache.
func (b *bench) cacheRepo(c string) string { return b.cfg.Registry + "/bench-cache/" + c }

// runRegCache fills the case's repository once with --cache-to from a fresh store, then
// per repetition builds with --cache-from in another fresh store, the page cache dropped
// first as before the cold builds.
func (b *bench) runRegCache(ctx context.Context, bc benchCase) error {
	repo := b.cacheRepo(bc.Name)
	fmt.Printf("== %s, registry cache: an empty store with --cache-from %s\n", bc.Name, repo)
	ok, err := b.regCacheBuild(ctx, bc, measureCacheTo, bc.Name+"-cache-to", "--cache-to", repo)
	if err != nil || !ok {
		return err
	}
	for rep := range b.cfg.Reps {
		name := fmt.Sprintf("%s-cache-from-%d", bc.Name, rep)
		if _, err := b.regCacheBuild(ctx, bc, measureRegistry, name, "--cache-from", repo); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// regCacheBuild runs forge's build of the case's Dockerfile with flags in a fresh store and
// records it as measure m; it returns whether the build succeeded, and an error only when
// the benchmark cannot go on. A --cache-from build that ran a RUN step counts as failed:
// it did not measure the warm cache.
func (b *bench) regCacheBuild(ctx context.Context, bc benchCase, m, name string, flags ...string) (bool, error) {
	forge := tool{Name: toolForge, Bin: b.cfg.Forge, Driver: b.cfg.Driver}
	st, err := b.freshStore(name)
	if err != nil {
		return false, err
	}
	defer b.done(st)
	contextDir := filepath.Join(b.cfg.Work, "ctx", bc.Context)
	if b.cfg.Drop {
		if err := b.dropCaches(contextDir); err != nil {
			return false, err
		}
	}
	dockerfile := filepath.Join(b.cfg.Work, "cases", bc.Name, "Dockerfile.v1")
	inv := invocation{Log: name + ".log", Env: forge.env(st),
		Argv: forge.bud(st, "localhost/bench-"+bc.Name, dockerfile, contextDir, flags...)}
	s, err := b.r.run(ctx, inv)
	if err == nil && m == measureRegistry {
		err = checkCacheHits(filepath.Join(b.r.work, "logs", inv.Log))
	}
	b.res.add(key{bc.Name, m, toolForge}, s, err)
	return err == nil, ctx.Err()
}

// checkCacheHits reads a build's output and fails unless every RUN step came from the
// registry cache.
func checkCacheHits(logPath string) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	runs, hits, err := countCacheHits(f)
	if err != nil {
		return err
	}
	if runs == 0 || hits < runs {
		return fmt.Errorf("%d of %d RUN steps came from the registry cache (log: %s)", hits, runs, logPath)
	}
	return nil
}

// countCacheHits counts the RUN steps of a forge build's output ("STEP 2/4: RUN ...") and
// the steps it took from a --cache-from registry ("--> Using cache ID (from REPO)").
func countCacheHits(r io.Reader) (runs, hits int, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if _, text, ok := strings.Cut(line, "STEP "); ok {
			if _, instr, ok := strings.Cut(text, ": "); ok && strings.HasPrefix(instr, "RUN ") {
				runs++
			}
		}
		if strings.HasPrefix(line, "--> Using cache ") && strings.Contains(line, " (from ") {
			hits++
		}
	}
	return runs, hits, sc.Err()
}

// writeRegCache prints the registry-cache table: per case, the cold build, the cold build
// from the registry cache, the local cached rebuild, and the two ratios the targets use.
func (b *bench) writeRegCache(md *strings.Builder, cases []benchCase) {
	var rows []string
	for _, bc := range cases {
		if !bc.RegCache || !b.ranMeasure(bc.Name, measureCacheTo) {
			continue
		}
		cold, reg, cached := b.regCacheStats(bc.Name)
		fill := b.stat(key{bc.Name, measureCacheTo, toolForge})
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", bc.Name, cold.seconds(), reg.seconds(),
			cached.seconds(), ratioText(ratio(cold, reg, false)), ratioText(ratio(reg, cached, false)), reg.megabytes(),
			fill.seconds()))
	}
	if len(rows) == 0 {
		return
	}
	md.WriteString("| forge, registry cache | cold s | cold from the registry cache s | local cached s | cold/registry | registry/local cached | registry RSS MB | filling it (cold + --cache-to) s |\n")
	md.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	md.WriteString(strings.Join(rows, "") + "\n")
}

// regCacheStats returns forge's cold build, its cold build from the registry cache and its
// local cached rebuild of a case.
func (b *bench) regCacheStats(c string) (cold, reg, cached stat) {
	return b.stat(key{c, measureCold, toolForge}), b.stat(key{c, measureRegistry, toolForge}),
		b.stat(key{c, measureCached, toolForge})
}

// regCacheTargets are the registry cache's goals for the cases it ran on: a cold build from
// it at least 5x faster than a cold build, and within 2x of a local cached rebuild.
func (b *bench) regCacheTargets() []target {
	var ts []target
	for _, bc := range casesFor(b.cfg.Registry, sizesFor(b.cfg.Quick)) {
		if !bc.RegCache || !b.ranMeasure(bc.Name, measureCacheTo) {
			continue
		}
		cold, reg, cached := b.regCacheStats(bc.Name)
		v, ok := ratio(cold, reg, false)
		ts = append(ts, target{Name: bc.Name + ", registry cache: cold / cold from the registry cache, forge",
			Value: v, Limit: 5, Op: atLeast, OK: ok})
		v, ok = ratio(reg, cached, false)
		ts = append(ts, target{Name: bc.Name + ", registry cache: cold from the registry cache / local cached, forge",
			Value: v, Limit: 2, OK: ok})
	}
	return ts
}
