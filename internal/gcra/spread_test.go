package gcra

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// TestTrySpreadSpreadsRefusals: refusals by TrySpread are told the slots
// to come one interval apart (Try tells them all the next slot), reserve
// no permit (a refused caller that never comes back costs nothing), are
// capped at maxWait, and start again from the next free permit once every
// slot pointed at has passed.
func TestTrySpreadSpreadsRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		b := New(false, 10, 1, 0)
		defer b.Close()
		if _, r := b.TrySpread(float64(time.Hour)); !r.OK() {
			t.Fatalf("first TrySpread: %+v, want a permit", r)
		}
		for k := 1; k <= 5; k++ {
			_, r := b.TrySpread(float64(time.Hour))
			if want := float64(time.Duration(k) * interval); r.Status != NoToken || r.Wait != want {
				t.Fatalf("refusal %d: %+v, want NoToken with Wait %v", k, r, time.Duration(want))
			}
		}
		if _, r := b.Try(); r.Wait != float64(interval) {
			t.Errorf("Try after refusals: Wait %v, want %v (the next free permit)", time.Duration(r.Wait), interval)
		}
		// nobody came back: the next slot's permit is free to whoever comes
		time.Sleep(interval)
		if _, r := b.TrySpread(float64(time.Hour)); !r.OK() {
			t.Fatalf("TrySpread at the next slot: %+v, want a permit (refusals reserve none)", r)
		}
		// capped: the next refusal would be told the slot after the 5th
		// (at 6 intervals from the start, 5 from now)
		_, r := b.TrySpread(float64(3 * interval))
		if r.Wait != float64(3*interval) {
			t.Errorf("capped refusal: Wait %v, want %v", time.Duration(r.Wait), 3*interval)
		}
		// every slot pointed at has passed: back to the next free permit
		time.Sleep(time.Second)
		_, _ = b.TrySpread(float64(time.Hour))
		if _, r := b.TrySpread(float64(time.Hour)); r.Wait != float64(interval) {
			t.Errorf("refusal after the spread passed: Wait %v, want %v", time.Duration(r.Wait), interval)
		}
	})
}

// TestTrySpreadLateTakerKeepsTheSchedule: a slot pointed at by a refusal
// and taken up to catchUp late continues the schedule (the next slot stays
// one interval after it, not after the late taker); later than catchUp,
// or a slot nobody was pointed at, restarts it from now, as Try does.
func TestTrySpreadLateTakerKeepsTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval, late = 100 * time.Millisecond, 30 * time.Millisecond
		for _, tc := range []struct {
			name    string
			catchUp time.Duration
			refuse  bool
			next    time.Duration // Wait of a refusal right after the late grant
		}{
			{"pointed at, within catch-up", 50 * time.Millisecond, true, interval - late},
			{"pointed at, strict", 0, true, interval},
			{"not pointed at", 50 * time.Millisecond, false, interval},
		} {
			b := New(false, 10, 1, tc.catchUp)
			if _, r := b.TrySpread(float64(time.Hour)); !r.OK() {
				t.Fatalf("%s: first TrySpread refused", tc.name)
			}
			if tc.refuse {
				_, _ = b.TrySpread(float64(time.Hour)) // told the slot at 100 ms
			}
			time.Sleep(interval + late)
			if _, r := b.TrySpread(float64(time.Hour)); !r.OK() {
				t.Fatalf("%s: late TrySpread refused", tc.name)
			}
			if _, r := b.Try(); r.Wait != float64(tc.next) {
				t.Errorf("%s: next slot in %v, want %v", tc.name, time.Duration(r.Wait), tc.next)
			}
			b.Close()
			time.Sleep(time.Second)
		}
	})
}

// TestTrySpreadFollowsTheRate: refusals spread over the permits to come
// stay spread over as many permits when the rate changes (an adaptive
// limit, SetRate): raised 100-fold, the next refusal is told the 11th
// permit at the new rate, not 11 s as at the old one.
func TestTrySpreadFollowsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(false, 1, 1, 0)
		defer b.Close()
		for range 11 { // one permit, ten refusals: told 1 s ... 10 s
			_, _ = b.TrySpread(float64(time.Hour))
		}
		b.SetRate(100)
		_, r := b.TrySpread(float64(time.Hour))
		if want := float64(110 * time.Millisecond); r.Status != NoToken || math.Abs(r.Wait-want) > 1 {
			t.Errorf("refusal after the rate went from 1/s to 100/s: %+v, want NoToken with Wait %v", r, time.Duration(want))
		}
	})
}
