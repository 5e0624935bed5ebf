package ratelimit

import (
	"errors"
	"testing"
)

// FuzzPerKey drives a per-key limiter (reject mode) with producers'
// key values, each message's key a slice of the fuzz input: no key value
// makes it fail other than with ErrLimited, panic or keep more than
// max_keys buckets, and no key is admitted twice (burst 1, a rate no
// test outlives), whatever bytes it has.
func FuzzPerKey(f *testing.F) {
	f.Add([]byte("a\x00b\x00c\x00a"), uint8(2))
	f.Add([]byte("\x00\x00\xff\xfe"), uint8(1))
	f.Add(make([]byte, 600), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, maxKeys uint8) {
		l := mustNew(t, WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(1e-6, 1), WithMaxKeys(int(maxKeys%8)+1))
		h := l.Middleware(noop)
		seen := map[string]bool{}
		for i, start := 0, 0; i <= len(data) && len(seen) < 64; i++ {
			if i < len(data) && data[i] != 0 {
				continue
			}
			k := string(data[start:i])
			start = i + 1
			_, err := h(keyedMsg(k))
			if err != nil && !errors.Is(err, ErrLimited) {
				t.Fatalf("key %q: %v", k, err)
			}
			if err == nil && seen[k] {
				// Burst 1 and no refill: a bucket that gave its token is
				// not at rest, so it is never dropped and made again; a key
				// past max_keys (or empty, or too long) shares the one
				// fallback bucket.
				t.Fatalf("key %q admitted twice at burst 1 (%d keys live)", k, l.Keys())
			}
			if err == nil {
				seen[k] = true
			}
			if n := l.Keys(); n > int(maxKeys%8)+1 {
				t.Fatalf("%d keys live, max %d", n, maxKeys%8+1)
			}
		}
	})
}
