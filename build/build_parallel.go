package build

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
)

// jobs runs the stages of one build, each once, at most --jobs at a time. A stage waits
// for the stages it is known to use before it takes a slot; one that asks for a stage
// while it runs (a name only its own ARGs give) lets its slot go while it waits, so
// waiting never blocks the stage waited for. The first failure cancels the others, and
// the build returns only once every stage started has ended, so nothing is left half
// made.
type jobs struct {
	root     *builder // the build's own builder, which never holds a slot
	run      stageRunner
	slots    chan struct{}
	cancel   context.CancelFunc
	parallel bool // stages may run at once: their output lines are prefixed
	output   *lineOutput

	mu      sync.Mutex
	started map[int]*stageJob
	used    map[string]bool // --build-args consumed, merged from every stage
	mounted []string        // images mounted for COPY --from, unmounted at the end
	first   error
	running sync.WaitGroup
}

// stageJob is a stage started: done is closed once res or err is set.
type stageJob struct {
	done chan struct{}
	res  *stageResult
	err  error
}

// stageRunner builds stage i with v, the builder as the stage sees it.
type stageRunner func(ctx context.Context, v *builder, i int) (*stageResult, error)

// runStageSteps runs the stage's steps. A --cache-from entry the stage went on from can
// fail only when its layers are pulled, steps later: the registry is then dropped (see
// remoteCache.fail) and the stage runs again, from the local cache as far as it got.
func runStageSteps(ctx context.Context, v *builder, i int) (*stageResult, error) {
	for {
		res, err := newStageRun(v, i).run(ctx)
		var redo *remoteRedo
		if !errors.As(err, &redo) || ctx.Err() != nil {
			return res, err
		}
	}
}

// buildStages builds the target and the stages it needs: one after the other in file
// order with --jobs 1 (the output reads like the Dockerfile), else all at once as far as
// their dependencies and --jobs allow. Stages the target does not need are skipped.
func (b *builder) buildStages(ctx context.Context, target int) (*stageResult, error) {
	return b.schedule(ctx, target, runStageSteps)
}

func (b *builder) schedule(ctx context.Context, target int, run stageRunner) (*stageResult, error) {
	needed, deps, err := b.stageGraph(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := b.opts.Jobs
	if n <= 0 {
		n = runtime.NumCPU()
	}
	b.deps = deps
	b.jobs = &jobs{root: b, run: run, slots: make(chan struct{}, n), cancel: cancel, started: map[int]*stageJob{}, used: b.usedArgs,
		parallel: n > 1 && overlapping(needed, deps), output: &lineOutput{}}
	order := sortedKeys(needed)
	var res *stageResult
	if n == 1 {
		for _, i := range order {
			if res, err = b.buildStage(ctx, i); err != nil {
				break
			}
		}
	} else {
		for _, i := range order {
			b.start(ctx, i)
		}
		res, err = b.buildStage(ctx, target)
	}
	if err != nil {
		cancel()
	}
	b.jobs.running.Wait()
	if err != nil {
		return nil, b.jobs.firstError(err)
	}
	return res, nil
}

// buildStage returns stage i's result, building it (and, first, the stages it uses) if
// no one has started it.
func (b *builder) buildStage(ctx context.Context, i int) (*stageResult, error) {
	return b.await(ctx, b.start(ctx, i))
}

// start starts stage i unless it was started.
func (b *builder) start(ctx context.Context, i int) *stageJob {
	j := b.jobs
	j.mu.Lock()
	defer j.mu.Unlock()
	if job, ok := j.started[i]; ok {
		return job
	}
	job := &stageJob{done: make(chan struct{})}
	j.started[i] = job
	j.running.Add(1)
	go func() {
		defer j.running.Done()
		job.res, job.err = j.root.runStage(ctx, i)
		if job.err != nil {
			j.fail(job.err)
		}
		close(job.done)
	}()
	return job
}

// await waits for a stage; a stage that waits lets its slot go meanwhile.
func (b *builder) await(ctx context.Context, job *stageJob) (*stageResult, error) {
	if b.holding {
		b.release()
		defer func() { _ = b.acquire(ctx) }()
	}
	select {
	case <-job.done:
		return job.res, job.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runStage builds stage i with its own view of the builder, once the stages it is known
// to use are built and a slot is free. b is the root builder.
func (b *builder) runStage(ctx context.Context, i int) (*stageResult, error) {
	for _, dep := range b.deps[i] {
		if _, err := b.await(ctx, b.start(ctx, dep)); err != nil {
			return nil, err
		}
	}
	v := b.view(i)
	if err := v.acquire(ctx); err != nil {
		return nil, err
	}
	defer v.release()
	defer v.flush()
	res, err := b.jobs.run(ctx, v, i)
	b.jobs.mu.Lock()
	for k := range v.usedArgs {
		b.jobs.used[k] = true
	}
	b.jobs.mu.Unlock()
	return res, err
}

// view is the builder as stage i sees it: its own output (prefixed with the stage's name
// when stages run at once) and its own record of the build args it used. b is the root
// builder.
func (b *builder) view(i int) *builder {
	v := *b
	v.usedArgs, v.holding = map[string]bool{}, false
	if b.jobs.parallel {
		prefix := "[" + stagePrefix(&b.df.Stages[i], i) + "] "
		v.out = b.jobs.output.writer(b.out, prefix)
		v.errOut = b.jobs.output.writer(b.errOut, prefix)
	}
	return &v
}

// flush writes what the stage printed without a final newline.
func (b *builder) flush() {
	for _, w := range []any{b.out, b.errOut} {
		if lw, ok := w.(*lineWriter); ok {
			lw.flush()
		}
	}
}

func (b *builder) acquire(ctx context.Context) error {
	select {
	case b.jobs.slots <- struct{}{}:
		b.holding = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *builder) release() {
	if b.holding {
		b.holding = false
		<-b.jobs.slots
	}
}

// fail records the first failure and stops the other stages. A stage stopped because
// another failed reports context.Canceled: that is not the build's error.
func (j *jobs) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.first == nil || (errors.Is(j.first, context.Canceled) && !errors.Is(err, context.Canceled)) {
		j.first = err
	}
	j.cancel()
}

// firstError is the error the build reports: the first stage failure, else err.
func (j *jobs) firstError(err error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.first != nil && (errors.Is(err, context.Canceled) || !errors.Is(j.first, context.Canceled)) {
		return j.first
	}
	return err
}

// overlapping reports whether two of the needed stages may run at once: neither uses the
// other, directly or not.
func overlapping(needed map[int]bool, deps map[int][]int) bool {
	uses := func(i, j int) bool { // does i use j?
		seen := map[int]bool{}
		stack := []int{i}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, d := range deps[k] {
				if d == j {
					return true
				}
				if !seen[d] {
					seen[d] = true
					stack = append(stack, d)
				}
			}
		}
		return false
	}
	order := sortedKeys(needed)
	for a, i := range order {
		for _, j := range order[a+1:] {
			if !uses(j, i) {
				return true
			}
		}
	}
	return false
}

func sortedKeys(m map[int]bool) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
