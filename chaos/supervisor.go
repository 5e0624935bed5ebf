package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds of the consumer process's life.
const (
	// consumerReadyTimeout bounds a consumer process's start (connect,
	// build the stack, subscribe).
	consumerReadyTimeout = time.Minute
	// consumerStopTimeout bounds a clean stop (SIGTERM) before SIGKILL.
	consumerStopTimeout = 30 * time.Second
	// tailEvery is how often the runner reads the event log.
	tailEvery = 10 * time.Millisecond
)

// supervisor runs a plan's consumer process (this program started again,
// see ConsumerMain), tails its event log into the run's Ledger, kills and
// restarts it for consumer_kill faults, and restarts it if it dies by
// itself. Safe for concurrent use.
type supervisor struct {
	r   *run
	exe string
	dir string // the event logs and the processes' output

	mu       sync.Mutex
	counters map[string]int64 // guarded by mu: the ended processes' counters, summed
	ctx      context.Context  // guarded by mu: the run's, for restarts
	cur      *proc            // guarded by mu; nil while none runs
	files    []string         // guarded by mu: every process's event log, in order
	closed   bool             // guarded by mu
}

// proc is one consumer process.
type proc struct {
	cmd      *exec.Cmd
	inc      int
	stderr   string
	rf       *os.File // the event log, read side
	t        *tailer  // owned by the poll loop until it stopped
	ready    atomic.Bool
	expected atomic.Bool // the runner stopped it
	stopPoll chan struct{}
	pollDone chan struct{}
	exited   chan struct{}
	waitErr  error // set before exited closes
}

func newSupervisor(r *run) (*supervisor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("levee/chaos: consumer process: %w", err)
	}
	dir, err := os.MkdirTemp("", "levee-chaos-consumer-")
	if err != nil {
		return nil, err
	}
	return &supervisor{r: r, exe: exe, dir: dir}, nil
}

// cleanup removes the event logs.
func (s *supervisor) cleanup() { _ = os.RemoveAll(s.dir) }

// pid returns the running process's ID (0 if none).
func (s *supervisor) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.cmd.Process.Pid
}

// start starts the next consumer process and waits until it consumes.
func (s *supervisor) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.ctx = ctx
	p, err := s.spawn(len(s.files))
	if err != nil {
		return err
	}
	s.cur = p
	go s.watch(p)
	return nil
}

// spawn starts process number inc; s.mu is held.
func (s *supervisor) spawn(inc int) (*proc, error) {
	r := s.r
	path := filepath.Join(s.dir, fmt.Sprintf("consumer-%d.events", inc))
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return nil, err
	}
	rf, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	spec := processSpec{Plan: r.p, RunID: r.runID, BrokerURL: r.brokerURL, StoreURL: r.storeURL, Ledger: path,
		Previous: slices.Clone(s.files), Incarnation: inc, Start: r.start.UnixNano()}
	js, err := json.Marshal(spec)
	if err != nil {
		_ = rf.Close()
		return nil, err
	}
	p := &proc{inc: inc, rf: rf, stderr: filepath.Join(s.dir, fmt.Sprintf("consumer-%d.stderr", inc)),
		stopPoll: make(chan struct{}), pollDone: make(chan struct{}), exited: make(chan struct{})}
	out, err := os.Create(p.stderr)
	if err != nil {
		_ = rf.Close()
		return nil, err
	}
	defer out.Close() // the child holds its own descriptor
	p.cmd = exec.Command(s.exe)
	p.cmd.Env = append(os.Environ(), ConsumerEnv+"="+string(js))
	p.cmd.Stdout, p.cmd.Stderr = out, out
	r.ledger.SetIncarnation(inc)
	p.t = newTailer(rf, r.ledger)
	p.t.tl, p.t.inc = r.tl, inc
	if err := p.cmd.Start(); err != nil {
		_ = rf.Close()
		return nil, fmt.Errorf("levee/chaos: starting the consumer process: %w", err)
	}
	s.files = append(s.files, path)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	go p.pollLoop()
	deadline := time.NewTimer(consumerReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(tailEvery)
	defer tick.Stop()
	for !p.ready.Load() {
		select {
		case <-p.exited:
			p.drain()
			return nil, fmt.Errorf("levee/chaos: the consumer process exited before it consumed: %v: %s", p.waitErr, p.output())
		case <-deadline.C:
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.drain()
			return nil, fmt.Errorf("levee/chaos: the consumer process did not consume within %s: %s", consumerReadyTimeout, p.output())
		case <-tick.C:
		}
	}
	return p, nil
}

// addCounters adds an ended process's last counters to the run's.
func (s *supervisor) addCounters(c map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counters == nil {
		s.counters = map[string]int64{}
	}
	for k, v := range c {
		s.counters[k] += v
	}
}

// totals returns the counters of every ended process, summed (a killed
// process's last quarter second is missing).
func (s *supervisor) totals() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counters)
}

// pollLoop reads the event log until stopPoll closes.
func (p *proc) pollLoop() {
	defer close(p.pollDone)
	tick := time.NewTicker(tailEvery)
	defer tick.Stop()
	for {
		_ = p.t.poll()
		if p.t.ready {
			p.ready.Store(true)
		}
		select {
		case <-p.stopPoll:
			return
		case <-tick.C:
		}
	}
}

// drain stops the poll loop of an exited process, reads its log to the
// end and records the deliveries it left open as interrupted.
func (p *proc) drain() (open, afterSuccess int) {
	close(p.stopPoll)
	<-p.pollDone
	_ = p.t.poll()
	open, afterSuccess = p.t.interrupted()
	_ = p.rf.Close()
	return open, afterSuccess
}

// output returns the end of the process's output.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.stderr)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// halt stops p (SIGTERM, SIGKILL when kill or when a clean stop takes too
// long), waits for it and drains its log.
func (p *proc) halt(kill bool) (open, afterSuccess int) {
	p.expected.Store(true)
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(consumerStopTimeout)
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	timer.Stop()
	return p.drain()
}

// watch restarts a process that exited without the runner stopping it.
func (s *supervisor) watch(p *proc) {
	<-p.exited
	if p.expected.Load() {
		return
	}
	s.mu.Lock()
	if s.cur != p || s.closed {
		s.mu.Unlock()
		return
	}
	s.cur = nil
	ctx := s.ctx
	s.mu.Unlock()
	open, _ := p.drain()
	s.addCounters(p.t.counters)
	s.r.tl.add("consumer process %d (incarnation %d) exited by itself (%v), %d deliveries in flight: %s",
		p.cmd.Process.Pid, p.inc, p.waitErr, open, p.output())
	if err := s.start(ctx); err != nil {
		s.r.tl.add("consumer process restart failed: %v", err)
	}
}

// kills kills the consumer process f.Count times at seeded times within
// the fault's window (fault number idx of the plan), each time starting
// it again f.Delay later.
func (s *supervisor) kills(ctx context.Context, done <-chan struct{}, tl *timeline, f Fault, idx int) {
	for _, t := range killTimes(s.r.p.Seed, idx, f) {
		if !sleepUntil(ctx, done, tl.start.Add(t)) {
			return
		}
		if !s.killOnce(ctx, done, tl, f) {
			return
		}
	}
}

// killTimes returns when fault number idx (a consumer_kill) kills the
// consumer: f.Count times drawn from the seed within [Start, End), in
// order. The same seed and plan give the same times.
func killTimes(seed uint64, idx int, f Fault) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, uint64(idx)+1))
	at := make([]time.Duration, f.Count)
	for i := range at {
		at[i] = f.Start + time.Duration(rng.Int64N(int64(f.Duration)))
	}
	slices.Sort(at)
	return at
}

// killOnce kills (or stops) the running process and starts the next one
// f.Delay later; false when the run ended meanwhile.
func (s *supervisor) killOnce(ctx context.Context, done <-chan struct{}, tl *timeline, f Fault) bool {
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	s.mu.Unlock()
	if p == nil {
		tl.add("%s: no consumer process running", f.Kind)
		return true
	}
	how := "SIGKILL"
	if f.Mode == "stop" {
		how = "SIGTERM (clean stop)"
	}
	open, afterSuccess := p.halt(f.Mode == "kill")
	s.addCounters(p.t.counters)
	tl.add("%s: consumer process %d (incarnation %d) %s: %d deliveries in flight, %d of them after a handler success",
		f.Kind, p.cmd.Process.Pid, p.inc, how, open, afterSuccess)
	if !sleepUntil(ctx, done, time.Now().Add(f.Delay)) {
		return false
	}
	if err := s.start(context.WithoutCancel(ctx)); err != nil {
		tl.add("%s: restart failed: %v", f.Kind, err)
		return !errors.Is(err, context.Canceled)
	}
	tl.add("%s: consumer process %d (incarnation %d) consuming", f.Kind, s.pid(), p.inc+1)
	return true
}

// stop stops the running process cleanly for good (the end of the run)
// and reads its log to the end.
func (s *supervisor) stop() {
	s.mu.Lock()
	s.closed = true
	p := s.cur
	s.cur = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	open, _ := p.halt(false)
	s.addCounters(p.t.counters)
	if open > 0 {
		s.r.tl.add("consumer process stopped with %d deliveries in flight", open)
	}
}
