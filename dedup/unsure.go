package dedup

import (
	"sync"
	"sync/atomic"
)

// maxUnsure bounds the claims a Dedup remembers as unsure. Past it, a
// further unsure claim is not remembered and ends with its lease.
const maxUnsure = 1024

// unsure remembers, per store key, the token of a claim this process may
// hold without knowing it: a Claim whose answer was lost (a store error
// other than a refused key; the claim may have taken effect), or a
// Release that failed after the handler failed. Such a claim holds the
// identity with no delivery behind it, so every redelivery would be
// deferred as in progress elsewhere until its lease ends. The next claim
// of the key from this process releases it first (Release deletes only a
// claim with that token, so a claim that never took effect costs one
// round trip and nothing else). Safe for concurrent use; the per-message
// path reads one atomic while nothing is unsure.
type unsure struct {
	n  atomic.Int32
	mu sync.Mutex
	m  map[string]uint64 // guarded by mu
}

// add remembers token for key (the latest one, if key has one already).
func (u *unsure) add(key string, token uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = make(map[string]uint64)
	}
	if _, ok := u.m[key]; !ok && len(u.m) >= maxUnsure {
		return
	}
	u.m[key] = token
	u.n.Store(int32(len(u.m)))
}

// take returns and forgets the unsure token of key.
func (u *unsure) take(key string) (uint64, bool) {
	if u.n.Load() == 0 {
		return 0, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.m[key]
	if ok {
		delete(u.m, key)
		u.n.Store(int32(len(u.m)))
	}
	return t, ok
}
