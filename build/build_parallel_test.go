package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// schedBuilder parses a Dockerfile into a builder without a store: the scheduler tests
// run fake stages.
func schedBuilder(t *testing.T, dockerfile string, jobs int, out *syncBuffer) *builder {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := newBuilder(context.Background(), nil, Options{ContextDir: dir, Jobs: jobs, Out: out, Err: out})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

const twoIndependent = `FROM scratch AS a
FROM scratch AS b
FROM scratch
COPY --from=a / /a
COPY --from=b / /b
`

// meetRunner is a fake stage runner in which stages a and b each signal that they run
// and wait for the other's signal: run one after the other they would wait forever, so
// the wait is bounded.
func meetRunner(wait time.Duration) stageRunner {
	started := map[int]chan struct{}{0: make(chan struct{}), 1: make(chan struct{})}
	return func(ctx context.Context, v *builder, i int) (*stageResult, error) {
		fmt.Fprintf(v.out, "stage %d runs\n", i)
		if i == 2 {
			return &stageResult{imageID: "final"}, nil
		}
		close(started[i])
		select {
		case <-started[1-i]:
			return &stageResult{imageID: fmt.Sprint(i)}, nil
		case <-time.After(wait):
			return nil, fmt.Errorf("stage %d: the other stage never ran at the same time", i)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func TestScheduleRunsIndependentStagesAtOnce(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	b := schedBuilder(t, twoIndependent, 2, &out)
	res, err := b.schedule(context.Background(), 2, meetRunner(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res.imageID != "final" {
		t.Errorf("result %+v, want the target's", res)
	}
	for _, want := range []string{"[a] stage 0 runs\n", "[b] stage 1 runs\n", "[stage-2] stage 2 runs\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestScheduleJobsOneRunsInFileOrder(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	b := schedBuilder(t, twoIndependent, 1, &out)
	_, err := b.schedule(context.Background(), 2, meetRunner(200*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "never ran at the same time") {
		t.Fatalf("with --jobs 1 the stages must not overlap, got %v", err)
	}
	if got := out.String(); got != "stage 0 runs\n" {
		t.Errorf("--jobs 1 output %q: want stage 0 alone, unprefixed, and nothing after its failure", got)
	}
}

// recorder is a fake runner that notes when each stage starts and ends.
type recorder struct {
	mu     sync.Mutex
	events []string
	fail   map[int]error
	block  map[int]bool // wait for cancellation
}

func (r *recorder) note(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) run(ctx context.Context, _ *builder, i int) (*stageResult, error) {
	r.note(fmt.Sprintf("start %d", i))
	defer r.note(fmt.Sprintf("end %d", i))
	if err := r.fail[i]; err != nil {
		return nil, err
	}
	if r.block[i] {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return nil, errors.New("never cancelled")
		}
	}
	time.Sleep(20 * time.Millisecond)
	return &stageResult{imageID: fmt.Sprint(i)}, nil
}

func (r *recorder) index(e string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Index(r.events, e)
}

func TestScheduleDependencies(t *testing.T) {
	t.Parallel()
	const df = `FROM scratch AS broken
FROM scratch AS a
FROM a AS b
FROM scratch AS c
FROM b
COPY --from=c / /
RUN --mount=type=bind,from=a,target=/m true
`
	for _, jobs := range []int{1, 4} {
		t.Run(fmt.Sprintf("jobs=%d", jobs), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{fail: map[int]error{0: errors.New("the unneeded stage ran")}}
			if _, err := schedBuilder(t, df, jobs, &syncBuffer{}).schedule(context.Background(), 4, rec.run); err != nil {
				t.Fatal(err)
			}
			if rec.index("start 0") >= 0 {
				t.Errorf("a stage the target does not need ran: %q", rec.events)
			}
			for _, order := range [][2]string{{"end 1", "start 2"}, {"end 2", "start 4"}, {"end 3", "start 4"}} {
				if a, b := rec.index(order[0]), rec.index(order[1]); a < 0 || b < 0 || a > b {
					t.Errorf("want %s before %s: %q", order[0], order[1], rec.events)
				}
			}
			if jobs == 1 && !slices.Equal(rec.events, []string{"start 1", "end 1", "start 2", "end 2", "start 3", "end 3", "start 4", "end 4"}) {
				t.Errorf("--jobs 1: stages out of file order: %q", rec.events)
			}
		})
	}
}

func TestScheduleFailureCancelsTheOthers(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	rec := &recorder{fail: map[int]error{0: boom}, block: map[int]bool{1: true}}
	_, err := schedBuilder(t, twoIndependent, 4, &syncBuffer{}).schedule(context.Background(), 2, func(ctx context.Context, v *builder, i int) (*stageResult, error) {
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // let b start first
		}
		return rec.run(ctx, v, i)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the failing stage's error, got %v", err)
	}
	if rec.index("end 1") < 0 {
		t.Errorf("the build returned before the cancelled stage ended: %q", rec.events)
	}
	if rec.index("start 2") >= 0 {
		t.Errorf("the target ran after its dependency failed: %q", rec.events)
	}
}

// A stage that finds out what it uses only while it runs (an ARG of its own) asks for it
// then; with one slot, it must give the slot up while it waits.
func TestScheduleOnDemandStageWithOneSlot(t *testing.T) {
	t.Parallel()
	const df = "FROM scratch AS dep\nFROM scratch\nARG FROM=dep\nCOPY --from=$FROM / /\n"
	b := schedBuilder(t, df, 1, &syncBuffer{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := b.schedule(ctx, 1, func(ctx context.Context, v *builder, i int) (*stageResult, error) {
		if i == 0 {
			return &stageResult{imageID: "dep"}, nil
		}
		dep, err := v.buildStage(ctx, 0)
		if err != nil {
			return nil, err
		}
		return &stageResult{imageID: "final-on-" + dep.imageID}, nil
	})
	if err != nil || res.imageID != "final-on-dep" {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestOverlapping(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		needed []int
		deps   map[int][]int
		want   bool
	}{
		{"one stage", []int{0}, nil, false},
		{"a chain", []int{0, 1, 2}, map[int][]int{1: {0}, 2: {1}}, false},
		{"a chain through a copy", []int{0, 1, 2}, map[int][]int{1: {0}, 2: {0, 1}}, false},
		{"two roots", []int{0, 1, 2}, map[int][]int{2: {0, 1}}, true},
		{"a diamond", []int{0, 1, 2, 3}, map[int][]int{1: {0}, 2: {0}, 3: {1, 2}}, true},
	} {
		needed := map[int]bool{}
		for _, i := range c.needed {
			needed[i] = true
		}
		if got := overlapping(needed, c.deps); got != c.want {
			t.Errorf("%s: overlapping %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	o := &lineOutput{}
	a, b := o.writer(&out, "[a] ").(*lineWriter), o.writer(&out, "[b] ").(*lineWriter)
	var wg sync.WaitGroup
	for _, w := range []*lineWriter{a, b} {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(w, "par")
				fmt.Fprint(w, "tial line\n")
			}
			fmt.Fprint(w, "no newline")
		})
	}
	wg.Wait()
	a.flush()
	b.flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 202 {
		t.Fatalf("%d lines, want 202", len(lines))
	}
	for _, l := range lines {
		if l != "[a] partial line" && l != "[b] partial line" && l != "[a] no newline" && l != "[b] no newline" {
			t.Errorf("mixed or unprefixed line %q", l)
		}
	}
	if w := o.writer(discard{}, "[x] "); w == nil {
		t.Error("nil writer")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
