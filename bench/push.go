package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The push measure: its case and measure name, and the physical reference's tool name.
const (
	casePush      = "push run-big"
	measurePush   = "push"
	toolReference = "tar|pigz"
)

// referenceScript compresses the store's layer directories the way a fast push would:
// tar of the files, gzip on 2 threads, nothing written. $1 is the store's root.
const referenceScript = `cd "$1/overlay" && tar -c */diff | pigz -p 2 > /dev/null`

// runPush builds run-big once per tool, then alternates pushes of it to the local
// registry (a new repository each time, no blob-info cache) with the physical reference
// on the files of forge's store.
func (b *bench) runPush(ctx context.Context, s sizes) error {
	fmt.Printf("== %s: forge push against tar -c | pigz -p 2 > /dev/null of the same files\n", casePush)
	bc := runBigCase(b.cfg.Registry, s)
	dockerfile := filepath.Join(b.cfg.Work, "cases", bc.Name, "Dockerfile.v1")
	stores := map[string]store{}
	for _, t := range b.tools {
		st, err := b.freshStore("push-" + t.Name)
		if err != nil {
			return err
		}
		defer b.done(st)
		inv := invocation{Log: "push-" + t.Name + "-build.log", Env: t.env(st),
			Argv: t.bud(st, "localhost/bench-"+bc.Name, dockerfile, filepath.Join(b.cfg.Work, "ctx", bc.Context))}
		if _, err := b.r.run(ctx, inv); err != nil {
			b.res.add(key{casePush, measurePush, t.Name}, sample{}, fmt.Errorf("build run-big: %w", err))
			continue
		}
		stores[t.Name] = st
	}
	for rep := range b.cfg.Reps {
		for _, t := range b.tools {
			st, ok := stores[t.Name]
			if !ok {
				continue
			}
			if err := removeBlobInfoCaches(st.Dir); err != nil {
				return err
			}
			dest := fmt.Sprintf("docker://%s/bench/push-%s-%d:latest", b.cfg.Registry, t.Name, rep)
			inv := invocation{Log: fmt.Sprintf("push-%s-%d.log", t.Name, rep), Env: t.env(st),
				Argv: t.push(st, "localhost/bench-"+bc.Name, dest)}
			smp, err := b.r.run(ctx, inv)
			b.res.add(key{casePush, measurePush, t.Name}, smp, err)
			if t.Name != toolForge {
				continue
			}
			inv = invocation{Log: fmt.Sprintf("push-reference-%d.log", rep), AsRoot: true,
				Argv: []string{"bash", "-c", referenceScript, "bash", st.Root}}
			smp, err = b.r.run(ctx, inv)
			b.res.add(key{casePush, measurePush, toolReference}, smp, err)
		}
	}
	return ctx.Err()
}

// removeBlobInfoCaches deletes image/v5's blob-info caches under dir, wherever a tool keeps
// them, so that a push cannot skip compressing or uploading what an earlier push learned.
func removeBlobInfoCaches(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), "blob-info-cache") {
			return os.Remove(path)
		}
		return nil
	})
}
