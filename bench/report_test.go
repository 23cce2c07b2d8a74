package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTimeV(t *testing.T) {
	t.Parallel()
	report := `	Command being timed: "forge bud ."
	User time (seconds): 1.25
	System time (seconds): 0.50
	Elapsed (wall clock) time (h:mm:ss or m:ss): 0:02.01
	Maximum resident set size (kbytes): 36092
	Exit status: 0
`
	path := filepath.Join(t.TempDir(), "time.txt")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := parseTimeV(path)
	if err != nil {
		t.Fatal(err)
	}
	want := sample{User: 1250 * time.Millisecond, Sys: 500 * time.Millisecond, MaxRSS: 36092}
	if s != want {
		t.Errorf("parseTimeV = %+v, want %+v", s, want)
	}
	if err := os.WriteFile(path, []byte("Command exited with non-zero status 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseTimeV(path); err == nil {
		t.Error("parseTimeV of a report without RSS: no error")
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []int64
		want int64
	}{
		{[]int64{5}, 5},
		{[]int64{3, 1, 2}, 2},
		{[]int64{4, 1, 3, 2}, 2}, // (2+3)/2 in integers
		{[]int64{10, 30, 20, 40}, 25},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := replaceSection(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	prose := "# Benchmarks\n\nintro\n\n"
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(prose+string(b)+"\nanalysis\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := prose + beginMarker + "\n\nsecond\n\n" + endMarker + "\n\nanalysis\n"
	if string(got) != want {
		t.Errorf("after two runs:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(string(got), "first") {
		t.Error("the old section is still there")
	}
}

func TestCasesHaveTheirChangedLineLast(t *testing.T) {
	t.Parallel()
	for _, bc := range casesFor("127.0.0.1:5000", sizesFor(true)) {
		v1, v2 := bc.Dockerfile(1), bc.Dockerfile(2)
		l1, l2 := strings.Split(strings.TrimSpace(v1), "\n"), strings.Split(strings.TrimSpace(v2), "\n")
		if len(l1) != len(l2) || l1[len(l1)-1] == l2[len(l2)-1] ||
			strings.Join(l1[:len(l1)-1], "\n") != strings.Join(l2[:len(l2)-1], "\n") {
			t.Errorf("%s: variants must differ in the last line only:\n%s\n---\n%s", bc.Name, v1, v2)
		}
	}
}

func TestTargetMet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		t    target
		want string
	}{
		{target{Value: 0.3, Limit: 0.3, OK: true}, "yes"},
		{target{Value: 0.6, Limit: 0.3, OK: true}, "**no** (2.00x the goal)"},
		{target{Value: 0.3, Limit: 0.3, Op: below, OK: true}, "**no** (1.00x the goal)"},
		{target{Value: 0.2, Limit: 0.3, Op: below, OK: true}, "yes"},
		{target{Value: 5, Limit: 5, Op: atLeast, OK: true}, "yes"},
		{target{Value: 12, Limit: 5, Op: atLeast, OK: true}, "yes"},
		{target{Value: 2.5, Limit: 5, Op: atLeast, OK: true}, "**no** (0.50x the goal)"},
		{target{Value: 0, Limit: 5, Op: atLeast}, "not measured"},
	} {
		if got := tc.t.met(); got != tc.want {
			t.Errorf("%s %.2f against %.2f: met() = %q, want %q", tc.t.Op, tc.t.Value, tc.t.Limit, got, tc.want)
		}
	}
}

func TestCountCacheHits(t *testing.T) {
	t.Parallel()
	out := `STEP 1/4: FROM 127.0.0.1:5000/library/busybox:latest
STEP 2/4: RUN echo one > /one
--> Using cache 3f2a (from 127.0.0.1:5000/bench-cache/x)
STEP 3/4: RUN echo two > /two
--> Using cache 9c1e
STEP 4/4: CMD ["sh"]
--> 77aa
[build] STEP 2/2: RUN echo three
--> Using cache 11bb (from 127.0.0.1:5000/bench-cache/x)
COMMIT localhost/bench-x
`
	runs, hits, err := countCacheHits(strings.NewReader(out))
	if err != nil || runs != 3 || hits != 2 {
		t.Errorf("countCacheHits = %d runs, %d hits, %v; want 3, 2, nil", runs, hits, err)
	}
}

// benchWith returns a bench whose results hold one sample of each given wall time.
func benchWith(walls map[key]time.Duration) *bench {
	b := &bench{cfg: config{Registry: "127.0.0.1:5000", Quick: true}, res: newResults()}
	for k, w := range walls {
		b.res.samples[k] = []sample{{Wall: w, MaxRSS: 30 << 10}}
	}
	return b
}

func TestRegCacheTargets(t *testing.T) {
	t.Parallel()
	f := func(c, m string) key { return key{c, m, toolForge} }
	b := benchWith(map[key]time.Duration{
		f("steps20", measureCold):       time.Second,
		f("steps20", measureCached):     50 * time.Millisecond,
		f("steps20", measureCacheTo):    1200 * time.Millisecond,
		f("steps20", measureRegistry):   250 * time.Millisecond,
		f(caseRedisLike, measureCold):   10 * time.Second,
		f(caseRedisLike, measureCached): 50 * time.Millisecond,
		f("tiny", measureCold):          200 * time.Millisecond,
	})
	b.res.failures[f(caseRedisLike, measureCacheTo)] = 1 // the cache could not be filled
	type row struct {
		name  string
		value float64
		ok    bool
		met   string
	}
	var got []row
	for _, tg := range b.targets() {
		if strings.Contains(tg.Name, "registry cache") {
			got = append(got, row{tg.Name, tg.Value, tg.OK, tg.met()})
		}
	}
	want := []row{
		{"steps20, registry cache: cold / cold from the registry cache, forge", 4, true, "**no** (0.80x the goal)"},
		{"steps20, registry cache: cold from the registry cache / local cached, forge", 5, true, "**no** (2.50x the goal)"},
		{"redis-like, registry cache: cold / cold from the registry cache, forge", 0, false, "not measured"},
		{"redis-like, registry cache: cold from the registry cache / local cached, forge", 0, false, "not measured"},
	}
	if len(got) != len(want) {
		t.Fatalf("registry-cache targets:\n%v\nwant:\n%v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].ok != want[i].ok || got[i].met != want[i].met ||
			math.Abs(got[i].value-want[i].value) > 1e-9 {
			t.Errorf("target %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	var md strings.Builder
	b.writeRegCache(&md, casesFor(b.cfg.Registry, sizesFor(true)))
	for _, line := range []string{
		"| steps20 | 1.00 | 0.25 | 0.05 | 4.00 | 5.00 | 30 | 1.20 |",
		"| redis-like | 10.00 | failed | 0.05 | - | - | - | failed |",
	} {
		if !strings.Contains(md.String(), line) {
			t.Errorf("registry-cache table lacks %q:\n%s", line, md.String())
		}
	}
}

func TestRegCacheSkipped(t *testing.T) {
	t.Parallel()
	b := benchWith(map[key]time.Duration{
		{"steps20", measureCold, toolForge}:   time.Second,
		{"steps20", measureCached, toolForge}: 50 * time.Millisecond,
	})
	for _, tg := range b.targets() {
		if strings.Contains(tg.Name, "registry cache") {
			t.Errorf("target %q without the registry-cache measure", tg.Name)
		}
	}
	var md strings.Builder
	b.writeRegCache(&md, casesFor(b.cfg.Registry, sizesFor(true)))
	if md.Len() != 0 {
		t.Errorf("registry-cache table without the measure:\n%s", md.String())
	}
}

func TestChrootTable(t *testing.T) {
	t.Parallel()
	f := func(m string) key { return key{caseChroot, m, toolForge} }
	for _, tc := range []struct {
		name    string
		walls   map[key]time.Duration
		failed  []key
		reps    int
		want    []string
		wantNot []string
	}{
		{
			name: "measured",
			walls: map[key]time.Duration{
				f(measureChanged):      100 * time.Millisecond,
				f(measureChrootCold):   30 * time.Second,
				f(measureChrootChange): 25 * time.Second,
			},
			reps: 1,
			want: []string{
				"| base-100k (10000 files) | 0.10 | 25.00 | 250.00 | 0.00 | 30 | 30.00 | 1 |",
				"takes 250x as long under chroot isolation",
			},
		},
		{
			name: "stopped after a slow repetition",
			walls: map[key]time.Duration{
				f(measureChanged):      100 * time.Millisecond,
				f(measureChrootCold):   2 * time.Minute,
				f(measureChrootChange): 100 * time.Second,
			},
			reps: 3,
			want: []string{"| base-100k (10000 files) | 0.10 | 100.00 | 1000.00 | 0.00 | 30 | 120.00 | 1 of 3: a build took over 90 s |"},
		},
		{
			name:    "the changed build failed",
			walls:   map[key]time.Duration{f(measureChanged): 100 * time.Millisecond, f(measureChrootCold): 30 * time.Second},
			failed:  []key{f(measureChrootChange)},
			reps:    1,
			want:    []string{"| base-100k (10000 files) | 0.10 | failed | - | - | - | 30.00 | 1 |"},
			wantNot: []string{"informational"},
		},
		{
			name:    "not run",
			walls:   map[key]time.Duration{f(measureChanged): 100 * time.Millisecond},
			reps:    1,
			wantNot: []string{"chroot"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := benchWith(tc.walls)
			b.cfg.Reps = tc.reps
			for _, k := range tc.failed {
				b.res.failures[k]++
			}
			var md strings.Builder
			b.writeChroot(&md)
			for _, s := range tc.want {
				if !strings.Contains(md.String(), s) {
					t.Errorf("chroot table lacks %q:\n%s", s, md.String())
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(md.String(), s) {
					t.Errorf("chroot table has %q:\n%s", s, md.String())
				}
			}
			for _, tg := range b.targets() {
				if strings.Contains(tg.Name, "chroot") {
					t.Errorf("target %q: the chroot measure has no goal", tg.Name)
				}
			}
		})
	}
}

func TestChrootBud(t *testing.T) {
	t.Parallel()
	st := newStore("/w/stores/s")
	got := strings.Join(chrootBud("/w/bin/forge", st, "localhost/x", "/w/Dockerfile", "/w/ctx"), " ")
	want := "/w/bin/forge --isolation chroot --root /w/stores/s/root --runroot /w/stores/s/runroot --storage-driver vfs " +
		"bud --tls-verify=false -t localhost/x -f /w/Dockerfile /w/ctx"
	if got != want {
		t.Errorf("chrootBud = %q, want %q", got, want)
	}
}
