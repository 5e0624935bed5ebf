package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/gcra"
)

// KeyFunc returns the per-key limit's key for a message (tenant, customer,
// partner API...). It must be safe for concurrent use. Returning "" (or
// panicking) sends the message to the fallback key; see WithKeyFunc.
type KeyFunc func(msg *message.Message) string

// Defaults of the per-key limits.
const (
	DefaultMaxKeys = 10000
	DefaultKeyIdle = 10 * time.Minute
	// MaxKeyLen is the longest key kept; a longer one goes to the fallback
	// key, so a garbage metadata value cannot exhaust memory.
	MaxKeyLen = 256
)

// FallbackKey is the key of messages whose key is missing, empty, longer
// than MaxKeyLen, or whose KeyFunc panicked, and of new keys that arrive
// while MaxKeys live keys are all busy. These messages share one bucket,
// limited by WithKeyOverride(FallbackKey, ...) if given, else by the
// default per-key limit. It is the empty string.
const FallbackKey = ""

type limitSpec struct {
	rate  float64
	burst int
}

type keyConfig struct {
	metadata  string
	fn        KeyFunc
	def       limitSpec
	defSet    bool
	overrides map[string]limitSpec
	maxKeys   int
	idle      time.Duration
}

func (c *config) keys() *keyConfig {
	if c.keyed == nil {
		c.keyed = &keyConfig{maxKeys: DefaultMaxKeys, idle: DefaultKeyIdle}
	}
	return c.keyed
}

func (k *keyConfig) validate() error {
	switch {
	case k.metadata == "" && k.fn == nil:
		return invalid("key", "is required by per-key limits (WithKeyMetadata or WithKeyFunc)", nil)
	case k.metadata != "" && k.fn != nil:
		return invalid("key", "must be one source, WithKeyMetadata or WithKeyFunc, not both", nil)
	case !k.defSet:
		return invalid("per_key", "is required with a key source (WithPerKey)", nil)
	case k.maxKeys < 1:
		return invalid("per_key.max_keys", "must be at least 1", k.maxKeys)
	case k.idle < 0:
		return invalid("per_key.idle", "must not be negative", k.idle)
	}
	if err := checkSpec("per_key", k.def); err != nil {
		return err
	}
	for key, s := range k.overrides {
		if len(key) > MaxKeyLen {
			return invalid("per_key.overrides", "key is longer than MaxKeyLen", key[:32]+"...")
		}
		if err := checkSpec("per_key.overrides."+key, s); err != nil {
			return err
		}
	}
	return nil
}

func checkSpec(prefix string, s limitSpec) error {
	if err := checkRate(prefix+".rate", s.rate); err != nil {
		return err
	}
	return checkBurst(prefix+".burst", s.burst, s.rate > 0)
}

// WithKeyMetadata takes the per-key limit's key from the message metadata
// value named name (for example "customer_id"). A missing or empty value
// uses FallbackKey. Needs WithPerKey.
func WithKeyMetadata(name string) Option {
	return optionFunc(func(c *config) { c.keys().metadata = name })
}

// WithKeyFunc takes the per-key limit's key from fn. An fn that returns ""
// or panics does not fail the message: the message uses FallbackKey and the
// event is counted (levee.ratelimit.key.fallbacks, reason "missing" or
// "panic") and, for a panic, logged. Needs WithPerKey.
func WithKeyFunc(fn KeyFunc) Option {
	return optionFunc(func(c *config) { c.keys().fn = fn })
}

// WithPerKey sets the default limit of each key: rate per second and
// burst, validated like WithRate and WithBurst. A message must get a token
// from its key's bucket and then from the limiter's own bucket (WithRate),
// if any.
func WithPerKey(rate float64, burst int) Option {
	return optionFunc(func(c *config) {
		k := c.keys()
		k.def, k.defSet = limitSpec{rate, burst}, true
	})
}

// WithKeyOverride gives key its own limit instead of the WithPerKey default.
// Use FallbackKey ("") to limit messages without a usable key.
func WithKeyOverride(key string, rate float64, burst int) Option {
	return optionFunc(func(c *config) {
		k := c.keys()
		if k.overrides == nil {
			k.overrides = map[string]limitSpec{}
		}
		k.overrides[key] = limitSpec{rate, burst}
	})
}

// WithMaxKeys bounds the number of live keys (DefaultMaxKeys by default;
// below 1 is an error). When a new key arrives at the bound, the least
// recently used key at rest (nobody waiting, bucket full, so dropping it
// loses nothing) among the 8 least recently used is dropped; when none of
// them is at rest, the new key's messages use FallbackKey until a key
// frees up (reason "overflow").
func WithMaxKeys(n int) Option { return optionFunc(func(c *config) { c.keys().maxKeys = n }) }

// WithKeyIdle drops a key unused for d once it is at rest (when messages
// arrive, and when Keys or the levee.ratelimit.keys gauge is read). Default
// DefaultKeyIdle; 0 drops keys as soon as they are at rest; negative is an
// error.
func WithKeyIdle(d time.Duration) Option { return optionFunc(func(c *config) { c.keys().idle = d }) }

type fallbackReason uint8

const (
	fbNone fallbackReason = iota
	fbMissing
	fbPanic
	fbInvalid
	fbOverflow
	numFallbacks
)

// label is the reason's metrics attribute value.
func (r fallbackReason) label() string {
	switch r {
	case fbMissing:
		return "missing"
	case fbPanic:
		return "panic"
	case fbInvalid:
		return "invalid"
	case fbOverflow:
		return "overflow"
	}
	return ""
}

// keyEntry is one live key. refs counts callers between get and put; it is
// incremented only under keyRegistry.mu, so an entry seen with refs == 0
// under the lock has no holder and can be dropped.
type keyEntry struct {
	key        string
	b          *gcra.Bucket
	refs       atomic.Int32
	lastUsed   time.Time // guarded by keyRegistry.mu
	prev, next *keyEntry // LRU list, guarded by keyRegistry.mu
}

// keyRegistry holds the per-key buckets, bounded and expiring.
type keyRegistry struct {
	metadata  string
	fn        KeyFunc
	def       limitSpec
	overrides map[string]limitSpec
	maxKeys   int
	idle      time.Duration
	catchUp   time.Duration
	fallback  *keyEntry // FallbackKey; never dropped

	mu     sync.Mutex
	m      map[string]*keyEntry // guarded by mu
	head   *keyEntry            // most recently used; guarded by mu
	tail   *keyEntry            // least recently used; guarded by mu
	closed bool                 // guarded by mu
}

func newKeyRegistry(k *keyConfig, catchUp time.Duration) *keyRegistry {
	r := &keyRegistry{
		metadata: k.metadata, fn: k.fn, def: k.def, maxKeys: k.maxKeys, idle: k.idle,
		catchUp: catchUp, m: map[string]*keyEntry{}, overrides: map[string]limitSpec{},
	}
	for key, s := range k.overrides {
		r.overrides[key] = s
	}
	r.fallback = &keyEntry{key: FallbackKey, b: r.newBucket(FallbackKey)}
	return r
}

func (r *keyRegistry) newBucket(key string) *gcra.Bucket {
	s, ok := r.overrides[key]
	if !ok {
		s = r.def
	}
	burst := max(s.burst, 1)
	return gcra.New(false, s.rate, burst, r.catchUp)
}

// keyOf extracts msg's key; a panic or an unusable key gives FallbackKey.
func (r *keyRegistry) keyOf(msg *message.Message) (key string, why fallbackReason, panicVal any) {
	if r.fn == nil {
		key = msg.Metadata.Get(r.metadata)
	} else {
		defer func() {
			if p := recover(); p != nil {
				key, why, panicVal = FallbackKey, fbPanic, p
			}
		}()
		key = r.fn(msg)
	}
	switch {
	case key == "":
		return FallbackKey, fbMissing, nil
	case len(key) > MaxKeyLen:
		return FallbackKey, fbInvalid, nil
	}
	return key, fbNone, nil
}

// get returns key's entry with a reference held; put it back with put.
func (r *keyRegistry) get(key string) (*keyEntry, fallbackReason, error) {
	if key == FallbackKey {
		r.fallback.refs.Add(1)
		return r.fallback, fbNone, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fbNone, ErrClosed
	}
	now := time.Now()
	r.expireLocked(now, 2)
	e := r.m[key]
	why := fbNone
	if e == nil {
		if len(r.m) >= r.maxKeys {
			r.evictLocked()
		}
		if len(r.m) >= r.maxKeys {
			e, why = r.fallback, fbOverflow
		} else {
			e = &keyEntry{key: key, b: r.newBucket(key)}
			r.m[key] = e
			r.pushFrontLocked(e)
		}
	} else if r.head != e {
		r.unlinkLocked(e)
		r.pushFrontLocked(e)
	}
	e.lastUsed = now
	e.refs.Add(1)
	return e, why, nil
}

func (r *keyRegistry) put(e *keyEntry) { e.refs.Add(-1) }

// expireLocked drops up to n least recently used keys idle for r.idle and
// at rest. Called on every get, it keeps expiry amortised O(1) without a
// goroutine.
func (r *keyRegistry) expireLocked(now time.Time, n int) {
	for i := 0; i < n; i++ {
		t := r.tail
		if t == nil || now.Sub(t.lastUsed) < r.idle || !r.atRest(t) {
			return
		}
		r.dropLocked(t)
	}
}

// evictScan is how many of the least recently used keys evictLocked
// looks at: a slow key (a low override still refilling) at the end of
// the list does not keep the keys at rest behind it from being dropped.
const evictScan = 8

// evictLocked drops the least recently used key at rest among the
// evictScan least recently used, if any.
func (r *keyRegistry) evictLocked() {
	e := r.tail
	for i := 0; i < evictScan && e != nil; i++ {
		if r.atRest(e) {
			r.dropLocked(e)
			return
		}
		e = e.prev
	}
}

// atRest reports whether dropping e loses nothing: no holder, nobody
// queued, and a full bucket (a new bucket would be identical).
func (r *keyRegistry) atRest(e *keyEntry) bool {
	if e.refs.Load() != 0 {
		return false
	}
	return e.b.AtRest()
}

func (r *keyRegistry) dropLocked(e *keyEntry) {
	r.unlinkLocked(e)
	delete(r.m, e.key)
	e.b.Close()
}

func (r *keyRegistry) pushFrontLocked(e *keyEntry) {
	e.prev, e.next = nil, r.head
	if r.head != nil {
		r.head.prev = e
	} else {
		r.tail = e
	}
	r.head = e
}

func (r *keyRegistry) unlinkLocked(e *keyEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		r.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		r.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// len returns the number of live keys (FallbackKey not counted). Keys
// expire as messages arrive (expireLocked); without traffic, len drops the
// keys that expired meanwhile itself, so the count it returns (the
// levee.ratelimit.keys gauge) is true when it is read: every key idle
// for r.idle and at rest, not only the least recently used ones. It walks
// the idle keys only, from the least recently used.
func (r *keyRegistry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for e := r.tail; e != nil && now.Sub(e.lastUsed) >= r.idle; {
		prev := e.prev
		if r.atRest(e) {
			r.dropLocked(e)
		}
		e = prev
	}
	return len(r.m)
}

func (r *keyRegistry) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	entries := make([]*keyEntry, 0, len(r.m))
	for _, e := range r.m {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	for _, e := range entries {
		e.b.Close()
	}
	r.fallback.b.Close()
}
