package breaker

import "time"

// Counts are the outcomes counted in the current rolling window while the
// breaker is closed, or in the current half-open trial. They are cleared on
// every state change.
type Counts struct {
	// Requests is the number of calls admitted (excluded ones included).
	Requests uint32
	// TotalSuccesses is the number of calls that succeeded.
	TotalSuccesses uint32
	// TotalFailures is the number of calls that failed.
	TotalFailures uint32
	// TotalExclusions is the number of calls that counted neither way.
	TotalExclusions uint32
	// ConsecutiveSuccesses is the length of the current run of successes.
	ConsecutiveSuccesses uint32
	// ConsecutiveFailures is the length of the current run of failures.
	ConsecutiveFailures uint32
}

func (c *Counts) onSuccess() {
	c.TotalSuccesses++
	c.ConsecutiveSuccesses++
	c.ConsecutiveFailures = 0
}

func (c *Counts) onFailure() {
	c.TotalFailures++
	c.ConsecutiveFailures++
	c.ConsecutiveSuccesses = 0
}

// valid returns the admitted calls that were not excluded.
func (c *Counts) valid() uint32 {
	if c.Requests < c.TotalExclusions {
		return 0
	}
	return c.Requests - c.TotalExclusions
}

// machine is the breaker's state: closed, half-open or open, the
// generation (one per state), and the rolling counts of the generation. It
// is the one source of truth of the state; Breaker.word publishes a
// snapshot of it for the lock-free success path. Its rules are those of
// gobreaker v2 (github.com/sony/gobreaker, MIT), which Levee used before:
// the closed window rolls in buckets of a tenth of the window; an outcome
// counts only in the generation and the window it was admitted in; open
// turns half-open lazily, when looked at after its expiry; half-open admits
// probes calls and closes after probes consecutive successes; any failure
// in half-open opens again. machine is guarded by Breaker.mu.
type machine struct {
	state   State
	gen     uint64
	start   time.Time // start of the generation: bucket ages count from it
	expiry  time.Time // while open: when the breaker turns half-open
	period  time.Duration
	openFor time.Duration
	probes  uint32
	age     uint64 // bucket age of the current bucket
	counts  Counts // totals of the window
	buckets []Counts
}

func newMachine(window, openFor time.Duration, probes uint32, now time.Time) machine {
	period := max(window/rollingBuckets, 1)
	n := window / period // rounded up, without window+period overflowing
	if window%period != 0 {
		n++
	}
	m := machine{period: period, openFor: openFor, probes: max(probes, 1), buckets: make([]Counts, n)}
	m.newGeneration(now)
	return m
}

// newGeneration starts the current state afresh at now.
func (m *machine) newGeneration(now time.Time) {
	m.gen++
	m.start = now
	m.clear()
	m.expiry = time.Time{}
	if m.state == StateOpen {
		m.expiry = now.Add(m.openFor)
	}
}

func (m *machine) clear() {
	m.counts = Counts{}
	m.age = 0
	clear(m.buckets)
}

// ageAt returns the bucket age of now in the current generation.
func (m *machine) ageAt(now time.Time) uint64 {
	a := int64(now.Sub(m.start) / m.period)
	if a < 0 {
		return 0
	}
	return uint64(a)
}

func (m *machine) bucket(age uint64) *Counts { return &m.buckets[age%uint64(len(m.buckets))] }

// inWindow reports whether an outcome admitted at age still counts.
func (m *machine) inWindow(age uint64) bool {
	return age <= m.age && m.age-age < uint64(len(m.buckets))
}

func (m *machine) onRequest() {
	m.counts.Requests++
	m.bucket(m.age).Requests++
}

func (m *machine) onSuccess(age uint64) {
	if m.inWindow(age) {
		m.counts.onSuccess()
		m.bucket(age).onSuccess()
	}
}

func (m *machine) onFailure(age uint64) {
	if m.inWindow(age) {
		m.counts.onFailure()
		m.bucket(age).onFailure()
	}
}

func (m *machine) onExclusion(age uint64) {
	if m.inWindow(age) {
		m.counts.TotalExclusions++
		m.bucket(age).TotalExclusions++
	}
}

// grow rolls the window forward to age.
func (m *machine) grow(age uint64) {
	if age <= m.age {
		return
	}
	if age-m.age >= uint64(len(m.buckets)) {
		m.clear()
		m.age = age
		return
	}
	for m.age < age {
		m.age++
		b := m.bucket(m.age)
		m.subtract(b)
		*b = Counts{}
	}
}

// subtract removes the oldest bucket b from the totals. A run of successes
// or failures shrinks only when it spans the whole window (it then began
// in b).
func (m *machine) subtract(b *Counts) {
	n := uint64(len(m.buckets))
	i0 := m.age % n
	succ, fail := b.ConsecutiveSuccesses, b.ConsecutiveFailures
	for i := uint64(1); i < n; i++ {
		o := &m.buckets[(i0+i)%n]
		succ += o.TotalSuccesses
		fail += o.TotalFailures
	}
	c := &m.counts
	if c.ConsecutiveSuccesses == succ {
		c.ConsecutiveSuccesses = sub(c.ConsecutiveSuccesses, b.ConsecutiveSuccesses)
	}
	if c.ConsecutiveFailures == fail {
		c.ConsecutiveFailures = sub(c.ConsecutiveFailures, b.ConsecutiveFailures)
	}
	c.Requests = sub(c.Requests, b.Requests)
	c.TotalSuccesses = sub(c.TotalSuccesses, b.TotalSuccesses)
	c.TotalFailures = sub(c.TotalFailures, b.TotalFailures)
	c.TotalExclusions = sub(c.TotalExclusions, b.TotalExclusions)
}

func sub(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return 0
}

// verdict is how an outcome counts.
type verdict int

const (
	verdictSuccess verdict = iota
	verdictFailure
	verdictExcluded
)

// The bits of Breaker.word, the published snapshot of the locked state.
const (
	wordState    = 3      // bits 0-1: the machine's State
	wordForce    = 3 << 2 // bits 2-3: Force
	wordDraining = 1 << 4 // a drain runs
	wordStreak   = 1 << 5 // ConsecutiveFailures > 0
	wordPending  = 1 << 6 // transitions wait for delivery to the hooks
	wordGenShift = 8      // the generation, from bit 8 on
)

// unlock publishes the locked state in word and unlocks mu. Every change of
// the state (machine, force, drain, events) is made under mu and followed
// by unlock, so word is never newer or older than the state once mu is
// free.
func (b *Breaker) unlock() {
	w := uint64(b.m.state) | uint64(b.force)<<2 | b.m.gen<<wordGenShift
	if b.drain.active {
		w |= wordDraining
	}
	if b.m.counts.ConsecutiveFailures > 0 {
		w |= wordStreak
	}
	if len(b.events) > 0 {
		w |= wordPending
	}
	b.word.Store(w)
	b.mu.Unlock()
}

// advanceLocked brings the machine up to now: it rolls the closed window
// and turns an expired open state half-open.
func (b *Breaker) advanceLocked(now time.Time) {
	m := &b.m
	switch m.state {
	case StateClosed:
		m.grow(m.ageAt(now))
	case StateOpen:
		if m.expiry.Before(now) {
			b.setStateLocked(StateHalfOpen, now)
		}
	}
}

// setStateLocked moves the machine to a new state and generation.
func (b *Breaker) setStateLocked(to State, now time.Time) {
	if b.m.state == to {
		return
	}
	b.m.state = to
	b.m.newGeneration(now)
	if b.slow != nil {
		b.slow.reset(now)
	}
	if b.ok != nil {
		b.ok.reset(b.ok.now())
	}
	b.reconcileLocked(now)
}

// admitLocked asks the machine to let one call through at now. When it
// does not (open, or half-open with every probe taken), it returns the
// state and false.
func (b *Breaker) admitLocked(now time.Time) (st State, gen, age uint64, ok bool) {
	b.advanceLocked(now)
	m := &b.m
	if m.state == StateOpen || (m.state == StateHalfOpen && m.counts.valid() >= m.probes) {
		return m.state, 0, 0, false
	}
	m.onRequest()
	return m.state, m.gen, m.age, true
}

// countLocked counts an outcome admitted at age in the current generation.
func (b *Breaker) countLocked(age uint64, v verdict, now time.Time) {
	m := &b.m
	switch v {
	case verdictExcluded:
		m.onExclusion(age)
	case verdictSuccess:
		m.onSuccess(age)
		if m.state == StateHalfOpen && m.counts.ConsecutiveSuccesses >= m.probes {
			b.setStateLocked(StateClosed, now)
		}
	default:
		switch m.state {
		case StateClosed:
			m.onFailure(age)
			if b.readyToTripLocked(now) {
				b.setStateLocked(StateOpen, now)
			}
		case StateHalfOpen:
			b.setStateLocked(StateOpen, now)
		}
	}
}

// record counts the outcome of a call admitted by admitLocked; an outcome
// of an earlier generation is dropped. slow records a slow call.
func (b *Breaker) record(gen, age uint64, v verdict, slow bool) {
	now := time.Now()
	b.mu.Lock()
	b.advanceLocked(now)
	if b.m.gen == gen {
		if slow && b.slow != nil {
			b.slow.record(now)
		}
		b.countLocked(age, v, now)
	}
	b.unlock()
}

// readyToTripLocked decides, after a failure while closed, whether the
// breaker opens.
func (b *Breaker) readyToTripLocked(now time.Time) bool {
	c := &b.m.counts
	cfg := &b.cfg
	if cfg.consecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(cfg.consecutiveFailures) {
		return true
	}
	completed := c.TotalSuccesses + c.TotalFailures
	if b.ok != nil {
		completed += b.ok.count(b.ok.now())
	}
	if completed < uint32(cfg.minRequests) || completed == 0 {
		return false
	}
	if cfg.failureRatio > 0 && float64(c.TotalFailures)/float64(completed) >= cfg.failureRatio {
		return true
	}
	if b.slow != nil && float64(b.slow.count(now))/float64(completed) >= cfg.slowRatio {
		return true
	}
	return false
}
