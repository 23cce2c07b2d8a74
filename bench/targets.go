package main

import (
	"fmt"
	"strings"
)

// target is one of the goals, checked against this run.
type target struct {
	Name  string     // e.g. "tiny, cold: forge/Buildah"
	Value float64    // what this run measured
	Limit float64    // the goal: Value Op Limit
	Op    comparison // atMost unless set
	Unit  string     // "" for ratios, "s" for seconds
	OK    bool       // whether Value could be measured
}

// comparison is how a target's value must compare with its limit.
type comparison int

const (
	atMost  comparison = iota // Value <= Limit
	below                     // Value < Limit
	atLeast                   // Value >= Limit
)

func (c comparison) String() string {
	return [...]string{atMost: "<=", below: "<", atLeast: ">="}[c]
}

func (c comparison) holds(v, limit float64) bool {
	switch c {
	case below:
		return v < limit
	case atLeast:
		return v >= limit
	default:
		return v <= limit
	}
}

func (t target) met() string {
	switch {
	case !t.OK:
		return "not measured"
	case t.Op.holds(t.Value, t.Limit):
		return "yes"
	default:
		return fmt.Sprintf("**no** (%.2fx the goal)", t.Value/t.Limit)
	}
}

// targets evaluates the table of targets on this run's medians.
func (b *bench) targets() []target {
	forge := func(c, m string) stat { return b.stat(key{c, m, toolForge}) }
	vsBuildah := func(c, m string, limit float64) target {
		v, ok := ratio(forge(c, m), b.stat(key{c, m, toolBuildah}), false)
		return target{Name: fmt.Sprintf("%s, %s: forge/Buildah", c, m), Value: v, Limit: limit, OK: ok}
	}
	ts := []target{
		vsBuildah("tiny", measureCold, 0.7),
		vsBuildah("steps20", measureCold, 0.5),
		vsBuildah("copy-20k", measureCold, 0.4),
		vsBuildah("copy-20k", measureCached, 0.1),
		vsBuildah("run-big", measureCold, 0.6),
	}
	for _, c := range b.caseNames() {
		ts = append(ts, vsBuildah(c, measureCached, 0.3))
	}
	for _, c := range []string{"tiny", "steps20"} {
		st := forge(c, measureCached)
		ts = append(ts, target{Name: c + ", cached: forge seconds", Value: st.Wall.Seconds(), Limit: 0.3, Unit: "s", OK: st.N > 0, Op: below})
	}
	v, ok := ratio(forge("base-100k", measureChanged), forge(caseBaseRef, measureChanged), false)
	ts = append(ts, target{Name: "base-100k one RUN (changed) / the same RUN on busybox, forge", Value: v, Limit: 1.5, OK: ok})
	v, ok = ratio(forge(casePush, measurePush), b.stat(key{casePush, measurePush, toolReference}), false)
	ts = append(ts, target{Name: "push of run-big: forge / `tar | pigz -p 2`", Value: v, Limit: 1.3, OK: ok})
	ts = append(ts, b.regCacheTargets()...)
	for _, c := range append(b.caseNames(), casePush) {
		v, ok := ratio(b.peak(c, toolForge), b.peak(c, toolBuildah), true)
		ts = append(ts, target{Name: c + ", peak RSS: forge/Buildah", Value: v, Limit: 1, OK: ok})
	}
	return keepMeasured(ts, b)
}

// keepMeasured drops the targets of cases this run did not include.
func keepMeasured(ts []target, b *bench) []target {
	var out []target
	for _, t := range ts {
		c, _, _ := strings.Cut(t.Name, ",")
		if b.ran(c) || strings.HasPrefix(t.Name, "base-100k one RUN") && b.ran("base-100k") ||
			strings.HasPrefix(t.Name, "push") && b.ran(casePush) {
			out = append(out, t)
		}
	}
	return out
}

// ran reports whether any build of the case was attempted.
func (b *bench) ran(c string) bool { return b.attempted(func(k key) bool { return k.Case == c }) }

// ranMeasure reports whether any build of the case's measure m was attempted.
func (b *bench) ranMeasure(c, m string) bool {
	return b.attempted(func(k key) bool { return k.Case == c && k.Measure == m })
}

func (b *bench) attempted(match func(key) bool) bool {
	for k := range b.res.samples {
		if match(k) {
			return true
		}
	}
	for k := range b.res.failures {
		if match(k) {
			return true
		}
	}
	return false
}

// caseNames lists the Dockerfile cases of this run, in order.
func (b *bench) caseNames() []string {
	var names []string
	for _, bc := range casesFor(b.cfg.Registry, sizesFor(b.cfg.Quick)) {
		names = append(names, bc.Name)
	}
	return names
}

// peak is the largest of the case's median peak RSS over its measures.
func (b *bench) peak(c, tool string) stat {
	var p stat
	for _, m := range []string{measureCold, measureCached, measureChanged, measurePush} {
		st := b.stat(key{c, m, tool})
		if st.N > 0 && (p.N == 0 || st.RSS > p.RSS) {
			p = st
		}
	}
	return p
}

func (b *bench) writeTargets(md *strings.Builder) {
	md.WriteString("| target | measured | goal | met |\n|---|--:|--:|---|\n")
	for _, t := range b.targets() {
		value := "-"
		if t.OK {
			value = fmt.Sprintf("%.2f%s", t.Value, t.Unit)
		}
		fmt.Fprintf(md, "| %s | %s | %s %.2f%s | %s |\n", t.Name, value, t.Op, t.Limit, t.Unit, t.met())
	}
}
