package priority

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/lru"
)

// maxAging bounds WithAging so base·aging cannot overflow.
const maxAging = 24 * time.Hour

// ArrivalMemory is how many rejected messages a Scheduler remembers the
// first arrival of, per handler and UUID (least recently rejected
// forgotten first), so that a
// redelivered message keeps aging from its first arrival instead of
// starting over: a message shed again and again keeps its place, ranked by
// its first arrival (docs/PRIORITY.md, max_waiting).
const ArrivalMemory = 10000

// ArrivalTTL is how long a remembered first arrival outlives its
// rejection's RetryAfter: a redelivery that has not come back to this
// process by then went to another consumer or was dropped by the broker,
// and a later message that reuses the UUID ranks by its own arrival
// instead of as one that has waited since. Expired arrivals are swept as
// messages pass (at most once a second).
const ArrivalTTL = 10 * time.Minute

// arrivalSweepEvery is how often the slow path scans the arrivals for
// expired ones.
const arrivalSweepEvery = time.Second

// Scheduler hands a fixed number of slots to messages of any number of
// handlers and routers; when a slot frees, the waiting message with the
// highest effective priority (base + waited/aging) gets it, earliest
// arrival first on ties. Build it with NewScheduler, share it, wrap handlers
// with Middleware or HandlerMiddleware, and Close it on shutdown. A
// Scheduler is safe for concurrent use.
type Scheduler struct {
	cfg   config
	epoch time.Time
	pool  sync.Pool // of *waiter
	tel   *schedTelemetry

	invalid atomic.Int64
	clamped atomic.Int64
	// arrivals remembers when a rejected message first asked for a slot
	// (scheduler clock), by handler and UUID, so its redelivery ages from
	// there.
	arrivals *lru.Map[arrivalKey, time.Duration]

	mu     sync.Mutex
	inUse  int                // guarded by mu
	seq    uint64             // guarded by mu
	q      queue              // guarded by mu
	closed bool               // guarded by mu
	levels [Levels]levelState // guarded by mu
}

// arrivalKey names a rejected message in the arrivals table: the handler
// that asked (one Middleware wrapper) and the message's key
// (idkey.Message: its UUID, bounded, or its content when it has none). Handlers sharing the scheduler often consume the same message
// (one topic, several handlers): each copy ages on its own, and one
// handler's grant does not forget another's first arrival.
type arrivalKey struct {
	h  *handlerWrap
	id string
}

// NewScheduler returns a Scheduler configured by opts (defaults: 8 slots,
// aging 500ms, max_waiting 10000, no max_wait or max_hold, default
// priority 0, retry-after 1s, no metrics). It returns an error wrapping
// ErrInvalidConfig for an invalid option value.
func NewScheduler(opts ...Option) (*Scheduler, error) {
	cfg, err := newConfig(opts...)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{cfg: cfg, epoch: time.Now(), q: newQueue(cfg.maxWaiting > 0),
		arrivals: lru.New[arrivalKey, time.Duration](ArrivalMemory)}
	s.pool.New = func() any { return &waiter{ch: make(chan error, 1), idx: [2]int{-1, -1}} }
	if cfg.meterProvider != nil {
		tel, err := newSchedTelemetry(s)
		if err != nil {
			return nil, err
		}
		s.tel = tel
	}
	return s, nil
}

// String describes the configuration, e.g. "scheduler=shared slots=8
// aging=500ms max_waiting=10000 max_wait=30s", for middleware.Stack labels
// and logs.
func (s *Scheduler) String() string {
	c := s.cfg
	out := fmt.Sprintf("scheduler=%s slots=%d aging=%s max_waiting=%d", c.name, c.slots, c.aging, c.maxWaiting)
	if b := c.waitBound(); b > 0 {
		out += fmt.Sprintf(" max_wait=%s", b)
	}
	return out
}

// Name returns the scheduler's name (WithName).
func (s *Scheduler) Name() string { return s.cfg.name }

// now returns the time since the scheduler's epoch (monotonic).
func (s *Scheduler) now() time.Duration { return time.Since(s.epoch) }

func (s *Scheduler) reject(sentinel error, p int, waited time.Duration) error {
	return &RejectError{Err: sentinel, Priority: p, Waited: waited, Retry: s.cfg.retryAfter}
}

// Acquire waits for a slot for a message of priority p (clamped to
// MinPriority..MaxPriority). It returns nil once the caller holds a slot,
// which it must give back with exactly one Release. Otherwise it returns
// ctx.Err() when ctx ends first or as the slot comes (the slot goes on to
// the next waiter), or had ended (then no slot is taken, even a free one),
// or a *RejectError wrapping ErrQueueFull,
// ErrMaxWait or ErrClosed; the caller then holds no slot. Most callers use
// Middleware instead.
func (s *Scheduler) Acquire(ctx context.Context, p int) error {
	_, _, err := s.acquire(ctx, nil, Clamp(p), -1)
	return err
}

// acquire is Acquire for a clamped p; it also returns how long it waited.
// A message asking again after a rejection passes its first arrival as
// since (scheduler clock; negative for none): its effective priority ages
// from there. acquire returns the arrival its aging counted from.
//
// It is past 80 lines because the fast path, the enqueue with shedding and
// the wait with its three exits (granted, max wait, context or close) all
// run under or around the one lock, and their bookkeeping (per-level
// counters, the queue entry) must be undone on every exit in one place.
func (s *Scheduler) acquire(ctx context.Context, msg *message.Message, p int, since time.Duration) (time.Duration, time.Duration, error) {
	lv := &s.levels[p-MinPriority]
	// A message whose context already ended takes no slot, even a free one.
	ctxErr := ctx.Err()
	s.mu.Lock()
	if s.closed {
		lv.closed++
		s.mu.Unlock()
		return 0, since, s.reject(ErrClosed, p, 0)
	}
	if ctxErr != nil {
		lv.canceled++
		s.mu.Unlock()
		return 0, since, ctxErr
	}
	if s.inUse < s.cfg.slots && s.q.len() == 0 {
		s.inUse++
		lv.granted++
		lv.wait.record(0)
		s.mu.Unlock()
		return 0, since, nil
	}
	w := s.pool.Get().(*waiter)
	enq := s.now()
	arrived := enq
	if since >= 0 && since < enq {
		arrived = since
	}
	w.base, w.enq, w.seq = p, enq, s.seq
	s.seq++
	w.key = int64(p)
	if s.cfg.aging > 0 {
		w.key = int64(p)*int64(s.cfg.aging) - int64(arrived)
	}
	if s.cfg.maxWaiting > 0 && s.q.len() >= s.cfg.maxWaiting {
		worst := s.q.worst.top()
		if !ahead(w, worst) {
			lv.queueFull++
			s.mu.Unlock()
			s.pool.Put(w)
			return 0, arrived, s.reject(ErrQueueFull, p, 0)
		}
		s.q.remove(worst)
		wl := &s.levels[worst.base-MinPriority]
		wl.waiting--
		wl.queueFull++
		worst.ch <- ErrQueueFull
	}
	s.q.push(w)
	lv.waiting++
	s.mu.Unlock()

	var expired <-chan time.Time
	if bound := s.holdBound(msg); bound > 0 {
		if w.timer == nil {
			w.timer = time.NewTimer(bound)
		} else {
			w.timer.Reset(bound)
		}
		expired = w.timer.C
	}
	var err error
	if done := ctx.Done(); done == nil && expired == nil {
		err = <-w.ch // nothing else can end this wait but Close
	} else {
		select {
		case err = <-w.ch:
		case <-done:
			err = s.leave(w, ctx.Err())
		case <-expired:
			err = s.leave(w, ErrMaxWait)
		}
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	if err == nil && ctx.Err() != nil {
		// Granted as the context ended, and the select took the grant
		// (both were ready): as in leave, a message whose context ended
		// takes no slot; it goes on at once.
		s.Release()
		err = ctx.Err()
	}
	waited := w.waited
	s.pool.Put(w)
	if err == nil {
		return waited, arrived, nil
	}
	waited = s.now() - enq
	switch err {
	case ErrQueueFull, ErrMaxWait, ErrClosed:
		return waited, arrived, s.reject(err, p, waited)
	}
	return waited, arrived, err
}

// holdBound is the longest msg (nil: a caller of Acquire) may wait in the
// queue: the scheduler's bound, or what is left of the delivery's hold
// when a concern further out waited before (package hold), which it
// records when msg is the first to wait.
func (s *Scheduler) holdBound(msg *message.Message) time.Duration {
	bound := s.cfg.waitBound()
	if msg == nil {
		return bound
	}
	now := time.Now()
	hold.Start(msg, now, s.cfg.maxHold)
	return hold.Left(msg.Context(), now, bound)
}

// leave takes w out of the queue after its wait ended with cause (a
// context error or ErrMaxWait). If w was granted or rejected meanwhile,
// that outcome stands, except a slot granted to a cancelled wait, which is
// handed on at once.
func (s *Scheduler) leave(w *waiter, cause error) error {
	lv := &s.levels[w.base-MinPriority]
	s.mu.Lock()
	if s.q.queued(w) {
		s.q.remove(w)
		lv.waiting--
		if cause == ErrMaxWait {
			lv.maxWait++
		} else {
			lv.canceled++
		}
		s.mu.Unlock()
		return cause
	}
	// The outcome was sent under the lock before w left the queue, so it
	// is in the buffer now.
	err := <-w.ch
	s.mu.Unlock()
	if err == nil && cause != ErrMaxWait {
		s.Release()
		return cause
	}
	return err
}

// Release gives back a slot obtained from Acquire, handing it to the
// waiting message with the highest effective priority, if any. Calling it
// without holding a slot is a bug; it is ignored rather than corrupting
// the count.
func (s *Scheduler) Release() {
	s.mu.Lock()
	if w := s.q.best.top(); w != nil {
		s.q.remove(w)
		lv := &s.levels[w.base-MinPriority]
		lv.waiting--
		lv.granted++
		w.waited = s.now() - w.enq
		lv.wait.record(w.waited)
		w.ch <- nil // the slot passes to w; inUse is unchanged
	} else if s.inUse > 0 {
		s.inUse--
	}
	s.mu.Unlock()
}

// Close rejects every waiting message with ErrClosed (which also matches
// context.Canceled) and every later Acquire, so their messages are Nacked.
// Messages holding slots finish normally. Close stops the scheduler's
// metric callbacks, is idempotent, and returns nil.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, e := range s.q.best.items {
		w := e.w
		lv := &s.levels[w.base-MinPriority]
		lv.waiting--
		lv.closed++
		w.idx = [2]int{-1, -1}
		w.ch <- ErrClosed
	}
	clear(s.q.best.items)
	clear(s.q.worst.items)
	s.q.best.items = s.q.best.items[:0]
	s.q.worst.items = s.q.worst.items[:0]
	s.mu.Unlock()
	if s.tel != nil {
		return s.tel.close()
	}
	return nil
}

// Stats returns a snapshot of the scheduler's state and counters.
func (s *Scheduler) Stats() Stats {
	st := Stats{
		Name:            s.cfg.name,
		Slots:           s.cfg.slots,
		InvalidPriority: s.invalid.Load(),
		ClampedPriority: s.clamped.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.InUse = s.inUse
	st.Waiting = s.q.len()
	for i := range s.levels {
		l := &s.levels[i]
		st.Levels[i] = LevelStats{
			Priority:  MinPriority + i,
			Waiting:   l.waiting,
			Granted:   l.granted,
			QueueFull: l.queueFull,
			MaxWait:   l.maxWait,
			Closed:    l.closed,
			Canceled:  l.canceled,
			Wait:      l.wait,
		}
	}
	return st
}
