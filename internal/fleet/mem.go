package fleet

import (
	"context"
	"math"
	"sync"
	"time"
)

// MemStore is an in-process LeaseStore and BreakerStore with the same
// rules as the Redis store's scripts (adapters/fleetredis), for tests and
// for one-process use. Its clock is time.Now (so synctest drives it).
// It is safe for concurrent use.
type MemStore struct {
	mu sync.Mutex
	// guarded by mu
	tat      map[string]time.Time
	members  map[string]map[string]time.Time
	breakers map[string]*memBreaker
	forces   map[string]Force
	calls    int
	err      error
	hang     bool
}

type memBreaker struct {
	state             BreakerState
	gen               uint64
	until, probeUntil time.Time
	probe             string
	drainAt           time.Time
	base              float64
	buckets           map[int64][2]uint64
	force             Force // the force the last report saw
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{tat: map[string]time.Time{}, members: map[string]map[string]time.Time{},
		breakers: map[string]*memBreaker{}, forces: map[string]Force{}}
}

// SetErr makes every later call fail with err (nil: succeed again).
func (m *MemStore) SetErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// SetHang makes every later call wait for its context to end and fail
// with the context's error, as a store that stopped answering (a stalled
// Redis: each call takes the caller's store timeout); false answers
// again.
func (m *MemStore) SetHang(on bool) {
	m.mu.Lock()
	m.hang = on
	m.mu.Unlock()
}

// failLocked returns why a call fails: the context's error once it ends,
// while the store hangs (mu released meanwhile), or the SetErr error.
func (m *MemStore) failLocked(ctx context.Context) error {
	if m.hang {
		m.mu.Unlock()
		<-ctx.Done()
		m.mu.Lock()
		return ctx.Err()
	}
	return m.err
}

// CallCount returns how many calls the store has answered or failed.
func (m *MemStore) CallCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

func (m *MemStore) memberCountLocked(key, member string, ttl time.Duration, now time.Time) int {
	ms := m.members[key]
	if ms == nil {
		ms = map[string]time.Time{}
		m.members[key] = ms
	}
	ms[member] = now
	for k, at := range ms {
		if now.Sub(at) > ttl {
			delete(ms, k)
		}
	}
	return len(ms)
}

// Lease implements LeaseStore with a GCRA per key.
func (m *MemStore) Lease(ctx context.Context, r LeaseRequest) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if err := m.failLocked(ctx); err != nil {
		return Lease{}, err
	}
	now := time.Now()
	members := m.memberCountLocked(r.Key, r.Member, r.MemberTTL, now)
	if r.Rate <= 0 {
		return Lease{RetryAfter: -1, Members: members}, nil
	}
	interval := time.Duration(float64(time.Second) / r.Rate)
	tau := time.Duration(r.Burst) * interval
	tat := m.tat[r.Key]
	if tat.Before(now) {
		tat = now
	}
	if r.N < 0 {
		back := tat.Add(time.Duration(r.N) * interval)
		if back.Before(now) {
			back = now
		}
		m.tat[r.Key] = back
		return Lease{Members: members}, nil
	}
	avail := int(math.Floor(float64(now.Add(tau).Sub(tat)) / float64(interval)))
	k := max(min(r.N, avail), 0)
	tat = tat.Add(time.Duration(k) * interval)
	m.tat[r.Key] = tat
	var ra time.Duration
	if k < r.N {
		ra = tat.Add(interval - tau).Sub(now)
	}
	return Lease{Tokens: k, RetryAfter: ra, Members: members}, nil
}

// SetForce implements BreakerStore.
func (m *MemStore) SetForce(ctx context.Context, key string, f Force) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if err := m.failLocked(ctx); err != nil {
		return err
	}
	m.forces[key] = f
	return nil
}

// Report implements BreakerStore: the same state machine as the Redis
// script, over ten buckets per window.
func (m *MemStore) Report(ctx context.Context, r Report) (View, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if err := m.failLocked(ctx); err != nil {
		return View{}, err
	}
	now := time.Now()
	members := m.memberCountLocked("b:"+r.Key, r.Member, r.MemberTTL, now)
	b := m.breakers[r.Key]
	if b == nil {
		b = &memBreaker{buckets: map[int64][2]uint64{}}
		m.breakers[r.Key] = b
	}
	force := m.forces[r.Key]
	b.step(r, force, now)
	b.force = force
	v := View{State: b.state, Generation: b.gen, Force: force, Members: members, Baseline: b.base}
	if b.state == StateHalfOpen {
		if (b.probe == "" || !now.Before(b.probeUntil)) && !r.Idle {
			b.probe, b.probeUntil = r.Member, now.Add(r.ProbeTTL)
		}
		v.Probe = b.probe == r.Member
	}
	if b.state == StateDraining {
		v.DrainElapsed = now.Sub(b.drainAt)
	}
	switch v.Force {
	case ForceOpen:
		v.State, v.Probe = StateOpen, false
	case ForceClosed:
		v.State, v.Probe = StateClosed, false
	}
	return v, nil
}

// step moves b's state machine at a report r made at now, with the force
// set now; b.force is the force the previous report saw.
func (b *memBreaker) step(r Report, force Force, now time.Time) {
	bw := max(r.Window/10, 10*time.Millisecond)
	idx := now.UnixNano() / int64(bw)
	trip := func() {
		b.state, b.gen, b.until, b.probe = StateOpen, b.gen+1, now.Add(r.OpenFor), ""
		clear(b.buckets)
	}
	if b.state == StateOpen && !now.Before(b.until) {
		b.state, b.probe = StateHalfOpen, ""
	}
	if b.state == StateDraining && now.Sub(b.drainAt) >= r.DrainWindow {
		b.state = StateClosed
	}
	if b.state == StateHalfOpen && b.probe == r.Member && r.Probe != 0 {
		if r.Probe > 0 {
			b.state, b.gen, b.probe = StateClosed, b.gen+1, ""
			if r.DrainWindow > 0 {
				b.state, b.drainAt = StateDraining, now
			}
			clear(b.buckets)
		} else {
			trip()
		}
	}
	if force == ForceNone && b.force == ForceOpen && b.state == StateClosed && r.DrainWindow > 0 {
		// The kill switch released from a closed fleet: the backlog it
		// held drains, as after a recovery.
		b.state, b.gen, b.drainAt = StateDraining, b.gen+1, now
		clear(b.buckets)
	}
	if b.state == StateClosed || b.state == StateDraining {
		c := b.buckets[idx]
		c[0] += r.Successes
		c[1] += r.Failures
		b.buckets[idx] = c
		var s, f uint64
		for i, c := range b.buckets {
			if i <= idx-10 {
				delete(b.buckets, i)
				continue
			}
			s, f = s+c[0], f+c[1]
		}
		if force == ForceOpen && b.force != ForceOpen && b.state == StateClosed && s+f > 0 {
			// Forced open from closed: the window's throughput is the
			// 100% of the drain at the release.
			b.base = float64(s+f) / r.Window.Seconds()
		}
		if s+f > 0 && s+f >= r.MinRequests && float64(f)/float64(s+f) >= r.FailureRatio {
			if b.state == StateClosed {
				// A drain's window holds what the ramp let through:
				// a trip during it keeps the baseline from before.
				b.base = float64(s+f) / r.Window.Seconds()
			}
			trip()
		}
	}
}
