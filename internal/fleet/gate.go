package fleet

import (
	"sync"
	"time"
)

// outageGate is shared by the Pools of one per-key limit (Keyed): while
// its store fails, the keys ask it at most once per lease period between
// them, not once per key each (a thousand keys made 5,000 failing calls a
// second, a load that keeps a struggling store down). A key whose turn it
// is not runs on its on_store_error mode without a store call; once a
// call succeeds the gate opens and every key asks again at its next step.
type outageGate struct {
	mu   sync.Mutex
	down bool      // guarded by mu: the last store call failed
	last time.Time // guarded by mu: when a key last asked while down
	err  error     // guarded by mu: the last failure
}

// turn reports whether a key may ask the store now; when it may not, it
// returns the last failure for the key to fall back on.
func (g *outageGate) turn(now time.Time, period time.Duration) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.down || now.Sub(g.last) >= period {
		g.last = now
		return true, nil
	}
	return false, g.err
}

// report records the outcome of a key's store call.
func (g *outageGate) report(err error) {
	g.mu.Lock()
	g.down, g.err = err != nil, err
	g.mu.Unlock()
}
