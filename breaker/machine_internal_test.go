package breaker

import (
	"testing"
	"time"
)

// at returns the time of bucket age a (plus a little) in a machine whose
// window is 1s (buckets of 100ms).
func at(t0 time.Time, a int) time.Time {
	return t0.Add(time.Duration(a)*100*time.Millisecond + time.Millisecond)
}

// fail and succeed admit one call at now and count its outcome.
func fail(m *machine, now time.Time) {
	m.grow(m.ageAt(now))
	m.onRequest()
	m.onFailure(m.age)
}

func succeed(m *machine, now time.Time) {
	m.grow(m.ageAt(now))
	m.onRequest()
	m.onSuccess(m.age)
}

func TestMachineRollingWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		run  func(m *machine)
		want Counts
	}{
		{"within the window", func(m *machine) {
			fail(m, at(t0, 0))
			fail(m, at(t0, 0))
			succeed(m, at(t0, 5))
		}, Counts{Requests: 3, TotalSuccesses: 1, TotalFailures: 2, ConsecutiveSuccesses: 1}},
		{"the oldest bucket leaves the window", func(m *machine) {
			fail(m, at(t0, 0))
			fail(m, at(t0, 0))
			succeed(m, at(t0, 5))
			succeed(m, at(t0, 10))
		}, Counts{Requests: 2, TotalSuccesses: 2, ConsecutiveSuccesses: 2}},
		{"a failure run spanning the window shrinks", func(m *machine) {
			fail(m, at(t0, 0))
			fail(m, at(t0, 0))
			fail(m, at(t0, 5))
			m.grow(m.ageAt(at(t0, 10)))
		}, Counts{Requests: 1, TotalFailures: 1, ConsecutiveFailures: 1}},
		{"a run that began later keeps its length", func(m *machine) {
			fail(m, at(t0, 0))
			succeed(m, at(t0, 1))
			fail(m, at(t0, 2))
			fail(m, at(t0, 3))
			m.grow(m.ageAt(at(t0, 10)))
		}, Counts{Requests: 3, TotalSuccesses: 1, TotalFailures: 2, ConsecutiveFailures: 2}},
		{"a jump past the window clears it", func(m *machine) {
			fail(m, at(t0, 0))
			succeed(m, at(t0, 9))
			m.grow(m.ageAt(at(t0, 25)))
		}, Counts{}},
		{"an outcome admitted before the window is dropped", func(m *machine) {
			m.onRequest()
			m.grow(m.ageAt(at(t0, 10)))
			m.onFailure(0)
		}, Counts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(time.Second, time.Second, 1, t0)
			tt.run(&m)
			if m.counts != tt.want {
				t.Fatalf("counts: got %+v, want %+v", m.counts, tt.want)
			}
		})
	}
}

// TestMachineProbesAndGenerations: half-open admits the configured probes
// and no more, the probes' successes close the breaker, and an outcome of
// an earlier generation is dropped; the published word follows every step.
func TestMachineProbesAndGenerations(t *testing.T) {
	b, err := New(WithConsecutiveFailures(1), WithOpenFor(time.Second), WithHalfOpenProbes(2))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	word := func() (State, uint64) {
		w := b.word.Load()
		return State(w & wordState), w >> wordGenShift
	}
	now := time.Now()
	b.mu.Lock()
	_, oldGen, oldAge, ok := b.admitLocked(now)
	b.unlock()
	if !ok {
		t.Fatal("closed breaker rejected a call")
	}
	b.report(oldGen, verdictFailure)
	if st, gen := word(); st != StateOpen || gen == oldGen {
		t.Fatalf("after a failure: got %v gen %d, want open in a new generation (was %d)", st, gen, oldGen)
	}
	// The stale outcome of the first admission is dropped.
	b.record(oldGen, oldAge, verdictSuccess, false)
	if c := b.Counts(); c != (Counts{}) {
		t.Fatalf("counts after a stale outcome: got %+v, want none", c)
	}

	later := now.Add(2 * time.Second)
	b.mu.Lock()
	var gens [3]uint64
	var admitted [3]bool
	var st State
	for i := range gens {
		st, gens[i], _, admitted[i] = b.admitLocked(later)
	}
	b.unlock()
	if st != StateHalfOpen || admitted != [3]bool{true, true, false} {
		t.Fatalf("half-open admissions: got %v %v, want half-open [true true false]", st, admitted)
	}
	if s, _ := word(); s != StateHalfOpen {
		t.Fatalf("word: got %v, want half-open", s)
	}
	b.record(gens[0], 0, verdictSuccess, false)
	if s, _ := word(); s != StateHalfOpen {
		t.Fatalf("after one probe: got %v, want half-open", s)
	}
	b.record(gens[1], 0, verdictSuccess, false)
	if s, _ := word(); s != StateClosed {
		t.Fatalf("after two probes: got %v, want closed", s)
	}
	b.flush()
	if b.word.Load()&wordPending != 0 {
		t.Fatal("events still pending after flush")
	}
}

// TestMachineWindowExtremes builds machines over the shortest window the
// options accept and the longest a time.Duration holds: the bucket count
// is the window over a tenth of it, rounded up, and never overflows (a
// window near the maximum once made a negative bucket count: `breaker:
// {window: 2562047h}` panicked in config.Build).
func TestMachineWindowExtremes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tt := range []struct {
		window time.Duration
		want   int
	}{
		{time.Millisecond, 10},
		{time.Millisecond + 1, 11},
		{10 * time.Second, 10},
		{time.Duration(1<<63 - 1), 11},
		{time.Duration(1<<63 - 8), 10},
	} {
		m := newMachine(tt.window, time.Second, 1, t0)
		if got := len(m.buckets); got != tt.want {
			t.Errorf("window %d: got %d buckets, want %d", tt.window, got, tt.want)
		}
		fail(&m, t0)
		if m.counts.TotalFailures != 1 {
			t.Errorf("window %d: got %+v after one failure", tt.window, m.counts)
		}
	}
}
