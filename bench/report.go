package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Markers of the section of docs/benchmarks.md that `make bench` rewrites.
const (
	beginMarker = "<!-- bench:begin: written by `make bench`; edit outside the markers -->"
	endMarker   = "<!-- bench:end -->"
)

// report prints the results as markdown and writes them into the -out file.
func (b *bench) report(ctx context.Context, cases []benchCase, s sizes, took time.Duration) error {
	var md strings.Builder
	fmt.Fprintf(&md, "Run of %s, %s. %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		mode(b.cfg, s), fmt.Sprintf("The whole run took %s.", took.Round(time.Second)))
	md.WriteString(describeMachine(ctx, b.cfg) + b.describeLoad() + "\n")
	b.writeTimes(&md, cases)
	b.writeRegCache(&md, cases)
	b.writeChroot(&md)
	b.writePush(&md)
	b.writeTargets(&md)
	fmt.Print(md.String())
	if b.cfg.Out == "" {
		return nil
	}
	if err := replaceSection(b.cfg.Out, md.String()); err != nil {
		return fmt.Errorf("write %s: %w", b.cfg.Out, err)
	}
	fmt.Printf("\nwrote the results into %s\n", b.cfg.Out)
	return nil
}

func mode(c config, s sizes) string {
	m := fmt.Sprintf("%d repetitions, medians", c.Reps)
	if c.Reps == 1 {
		m = "1 repetition"
	}
	if c.Quick {
		m += fmt.Sprintf(", QUICK mode (small sizes: %d files / %d MB to copy, %d MB run-big, %d-file base, "+
			"redis-like %d files and %d MB of source)", s.CopyFiles, s.CopyBytes/1e6, s.BigBytes/1e6, s.BaseFiles,
			s.PkgFiles, s.SrcBytes/1e6)
	}
	if c.Drop {
		m += ", page cache dropped before each cold build"
	}
	return m + fmt.Sprintf(", storage driver %s for both tools", c.Driver)
}

// stat is the median wall time, CPU time and peak RSS of some samples.
type stat struct {
	Wall   time.Duration
	CPU    time.Duration
	RSS    int64 // kB
	N      int   // samples
	Failed int
}

func (b *bench) stat(k key) stat {
	ss := b.res.samples[k]
	st := stat{N: len(ss), Failed: b.res.failures[k]}
	if len(ss) == 0 {
		return st
	}
	walls, cpus := make([]time.Duration, len(ss)), make([]time.Duration, len(ss))
	rss := make([]int64, len(ss))
	for i, s := range ss {
		walls[i], cpus[i], rss[i] = s.Wall, s.CPU(), s.MaxRSS
	}
	st.Wall, st.CPU, st.RSS = median(walls), median(cpus), median(rss)
	return st
}

// median of a non-empty slice; the mean of the middle two for an even count.
func median[T time.Duration | int64](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func (st stat) seconds() string {
	if st.N == 0 {
		return "failed"
	}
	s := fmt.Sprintf("%.2f", st.Wall.Seconds())
	if st.Failed > 0 {
		s += fmt.Sprintf(" (%d failed)", st.Failed)
	}
	return s
}

func (st stat) cpuSeconds() string {
	if st.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", st.CPU.Seconds())
}

func (st stat) megabytes() string {
	if st.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%d", st.RSS/1024)
}

// ratio returns a/b of two stats, and whether both had samples.
func ratio(a, b stat, rss bool) (float64, bool) {
	if a.N == 0 || b.N == 0 {
		return 0, false
	}
	if rss {
		return float64(a.RSS) / float64(b.RSS), b.RSS > 0
	}
	return a.Wall.Seconds() / b.Wall.Seconds(), b.Wall > 0
}

func ratioText(r float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

func (b *bench) writeTimes(md *strings.Builder, cases []benchCase) {
	md.WriteString("| case | measure | forge s | Buildah s | forge/Buildah | forge CPU s | Buildah CPU s | forge RSS MB | Buildah RSS MB | RSS forge/Buildah |\n")
	md.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, bc := range cases {
		for _, m := range measures {
			f, bu := b.stat(key{bc.Name, m, toolForge}), b.stat(key{bc.Name, m, toolBuildah})
			fmt.Fprintf(md, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", bc.Name, m, f.seconds(), bu.seconds(),
				ratioText(ratio(f, bu, false)), f.cpuSeconds(), bu.cpuSeconds(), f.megabytes(), bu.megabytes(),
				ratioText(ratio(f, bu, true)))
		}
	}
	md.WriteString("\n")
}

func (b *bench) writePush(md *strings.Builder) {
	f := b.stat(key{casePush, measurePush, toolForge})
	if f.N == 0 && f.Failed == 0 {
		return
	}
	bu, ref := b.stat(key{casePush, measurePush, toolBuildah}), b.stat(key{casePush, measurePush, toolReference})
	md.WriteString("| push of run-big | forge push s | Buildah push s | `tar -c | pigz -p 2` s | forge/reference | forge/Buildah | forge RSS MB | Buildah RSS MB |\n")
	md.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(md, "| to the local registry | %s | %s | %s | %s | %s | %s | %s |\n\n", f.seconds(), bu.seconds(), ref.seconds(),
		ratioText(ratio(f, ref, false)), ratioText(ratio(f, bu, false)), f.megabytes(), bu.megabytes())
}

// describeLoad says how busy the rest of the machine was while the commands ran: other
// work on it makes every number slower and noisier.
func (b *bench) describeLoad() string {
	var wall, others, steal time.Duration
	var load float64
	n := 0
	for _, ss := range b.res.samples {
		for _, s := range ss {
			wall, others, steal, load, n = wall+s.Wall, others+s.Others, steal+s.Steal, load+s.Load, n+1
		}
	}
	if n == 0 || wall == 0 {
		return ""
	}
	capacity := wall.Seconds() * float64(runtime.NumCPU())
	share := others.Seconds() / capacity
	line := fmt.Sprintf("- other work: while the commands ran, the rest of the machine (other processes, and kernel "+
		"threads such as writeback) used %.0f%% of its CPU time; hypervisor steal %.0f%%; mean 1-minute load average %.1f\n",
		100*share, 100*steal.Seconds()/capacity, load/float64(n))
	if share > 0.1 {
		line += "- **warning: the machine was busy with other work during this run; the numbers are slower and noisier than on an idle machine**\n"
	}
	return line
}

// replaceSection writes section between the markers of the file at path, keeping what
// is outside them; a file without markers gets the section appended.
func replaceSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	block := beginMarker + "\n\n" + section + "\n" + endMarker
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(endMarker):]
	} else {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		text += block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
