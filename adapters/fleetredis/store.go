package fleetredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/redact"
)

// DefaultPrefix starts every key the Store writes.
const DefaultPrefix = "levee:fleet"

// MaxKeyLen is the longest limit or breaker key the Store accepts.
const MaxKeyLen = 200

// MaxLeaseKeyLen is the longest key Lease accepts: a per-key fleet limit
// leases under its limit's key (at most MaxKeyLen bytes), ":k:" and the
// message's key (at most 256 bytes, ratelimit.MaxKeyLen), so every key
// ratelimit accepts has a bucket of its own in Redis.
const MaxLeaseKeyLen = 512

// Errors.
var (
	// ErrInvalidConfig is wrapped for an invalid URL, prefix or key.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/fleetredis: invalid configuration")
	// ErrUnreachable is wrapped when Open cannot reach the server.
	ErrUnreachable = errors.New("levee/fleetredis: redis unreachable")
	// ErrReply is wrapped when a script's reply has an unexpected shape.
	ErrReply = errors.New("levee/fleetredis: unexpected reply")
)

// Store keeps fleet rate limits (ratelimit.FleetStore) and fleet breakers
// (breaker.FleetStore) on one Redis server (5.0 or newer; not Cluster).
// Every call is one script run (one round trip) bounded by the caller's
// context. It is safe for concurrent use.
type Store struct {
	client     *redis.Client
	prefix     string
	ownsClient bool
}

// Open connects to url (redis://[user:password@]host:port/db, rediss://,
// unix://), checks the connection within dialTimeout, and returns a Store
// that owns its client. Keys start with prefix ("" gives DefaultPrefix).
// Errors never carry the password.
func Open(ctx context.Context, url, prefix string, dialTimeout time.Duration) (*Store, error) {
	s, err := Dial(url, prefix, dialTimeout)
	if err != nil {
		return nil, err
	}
	ro := s.client.Options()
	pctx, cancel := context.WithTimeout(ctx, ro.DialTimeout)
	defer cancel()
	if err := s.client.Ping(pctx).Err(); err != nil {
		_ = s.Close()
		return nil, redact.Error(fmt.Errorf("%w at %s: %w", ErrUnreachable, ro.Addr, err), url)
	}
	return s, nil
}

// Dial is Open without the ping: the client connects at its first call,
// and until the server answers every call fails, so a fleet limit or
// breaker on the store runs on its on_store_error mode. adapters/service
// uses it when the server is unreachable at start, so that a replica
// starting during a Redis outage runs as the file says it should during
// one instead of failing. Errors are Open's for the URL and the prefix.
func Dial(url, prefix string, dialTimeout time.Duration) (*Store, error) {
	ro, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if dialTimeout > 0 {
		ro.DialTimeout = dialTimeout
	}
	ro.ContextTimeoutEnabled = true // the caller's store timeout bounds every call
	c := redis.NewClient(ro)
	s, err := New(c, prefix)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	s.ownsClient = true
	return s, nil
}

// CheckURL parses url as Open does, without connecting: a URL go-redis
// refuses gives the error Open would, wrapping ErrInvalidConfig, with the
// password redacted. levee config check runs it on the fleet section's
// store.
func CheckURL(url string) error {
	_, err := parseURL(url)
	return err
}

// parseURL is the client options of url, errors redacted.
func parseURL(url string) (*redis.Options, error) {
	if _, err := redact.ParseURL(url); err != nil {
		return nil, redact.Error(fmt.Errorf("%w: url: %w", ErrInvalidConfig, err), url)
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("%w: url: %w", ErrInvalidConfig, err), url)
	}
	return ro, nil
}

// New returns a Store on client (Close leaves it open). Set the client's
// ContextTimeoutEnabled so that the store timeout bounds a call on a slow
// server.
func New(client *redis.Client, prefix string) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if len(prefix) > MaxKeyLen {
		return nil, fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalidConfig, MaxKeyLen)
	}
	return &Store{client: client, prefix: prefix}, nil
}

// Close closes the client when Open made it; it is idempotent.
func (s *Store) Close() error {
	if !s.ownsClient {
		return nil
	}
	s.ownsClient = false
	return s.client.Close()
}

func checkKey(key string) error { return checkKeyLen(key, MaxKeyLen) }

func checkKeyLen(key string, n int) error {
	if key == "" || len(key) > n {
		return fmt.Errorf("%w: key must be 1 to %d bytes", ErrInvalidConfig, n)
	}
	return nil
}

// Lease implements fleet.LeaseStore: one round trip. The key is 1 to
// MaxLeaseKeyLen bytes.
func (s *Store) Lease(ctx context.Context, r fleet.LeaseRequest) (fleet.Lease, error) {
	if err := checkKeyLen(r.Key, MaxLeaseKeyLen); err != nil {
		return fleet.Lease{}, err
	}
	k := s.prefix + ":rl:" + r.Key
	v, err := leaseScript.Run(ctx, s.client, []string{k + ":tat", k + ":m"},
		strconv.FormatFloat(r.Rate, 'g', -1, 64), max(r.Burst, 1), r.N, r.Member, max(r.MemberTTL.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return fleet.Lease{}, fmt.Errorf("levee/fleetredis: lease %s: %w", r.Key, err)
	}
	if len(v) != 3 {
		return fleet.Lease{}, fmt.Errorf("%w: lease returned %d values", ErrReply, len(v))
	}
	return fleet.Lease{Tokens: int(v[0]), RetryAfter: time.Duration(v[1]) * time.Microsecond, Members: int(v[2])}, nil
}

func (s *Store) breakerKeys(key string) []string {
	k := s.prefix + ":br:" + key
	return []string{k + ":s", k + ":w", k + ":m", k + ":force"}
}

// Report implements fleet.BreakerStore: one round trip.
func (s *Store) Report(ctx context.Context, r fleet.Report) (fleet.View, error) {
	if err := checkKey(r.Key); err != nil {
		return fleet.View{}, err
	}
	ms := func(d time.Duration) int64 { return max(d.Milliseconds(), 1) }
	raw, err := breakerScript.Run(ctx, s.client, s.breakerKeys(r.Key), r.Member, r.Successes, r.Failures, r.Probe,
		ms(r.Window), r.MinRequests, strconv.FormatFloat(r.FailureRatio, 'g', -1, 64),
		ms(r.OpenFor), ms(r.ProbeTTL), r.DrainWindow.Milliseconds(), ms(r.MemberTTL), idleArg(r.Idle)).Slice()
	if err != nil {
		return fleet.View{}, fmt.Errorf("levee/fleetredis: report %s: %w", r.Key, err)
	}
	return parseView(raw)
}

func idleArg(idle bool) int {
	if idle {
		return 1
	}
	return 0
}

func parseView(raw []any) (fleet.View, error) {
	if len(raw) != 7 {
		return fleet.View{}, fmt.Errorf("%w: report returned %d values", ErrReply, len(raw))
	}
	st, _ := raw[0].(string)
	gen, _ := raw[1].(int64)
	holder, _ := raw[2].(int64)
	fs, _ := raw[3].(string)
	members, _ := raw[4].(int64)
	el, _ := raw[5].(int64)
	bs, _ := raw[6].(string)
	base, err := strconv.ParseFloat(bs, 64)
	if err != nil {
		return fleet.View{}, fmt.Errorf("%w: baseline %q", ErrReply, bs)
	}
	v := fleet.View{Generation: uint64(max(gen, 0)), Probe: holder == 1, Members: int(members),
		DrainElapsed: time.Duration(el) * time.Millisecond, Baseline: base}
	switch st {
	case "closed":
		v.State = fleet.StateClosed
	case "open":
		v.State = fleet.StateOpen
	case "half":
		v.State = fleet.StateHalfOpen
	case "draining":
		v.State = fleet.StateDraining
	default:
		return fleet.View{}, fmt.Errorf("%w: state %q", ErrReply, st)
	}
	f, ok := fleet.ParseForce(fs)
	if !ok {
		return fleet.View{}, fmt.Errorf("%w: force %q", ErrReply, fs)
	}
	v.Force = f
	return v, nil
}

// SetForce implements fleet.BreakerStore: the kill switch. ForceNone
// deletes the override. The force key does not expire.
func (s *Store) SetForce(ctx context.Context, key string, f fleet.Force) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k := s.breakerKeys(key)[3]
	var err error
	if f == fleet.ForceNone {
		err = s.client.Del(ctx, k).Err()
	} else {
		err = s.client.Set(ctx, k, f.String(), 0).Err()
	}
	if err != nil {
		return fmt.Errorf("levee/fleetredis: force %s: %w", key, err)
	}
	return nil
}

// Force returns the override set on the fleet breaker key.
func (s *Store) Force(ctx context.Context, key string) (fleet.Force, error) {
	if err := checkKey(key); err != nil {
		return fleet.ForceNone, err
	}
	v, err := s.client.Get(ctx, s.breakerKeys(key)[3]).Result()
	if errors.Is(err, redis.Nil) {
		return fleet.ForceNone, nil
	}
	if err != nil {
		return fleet.ForceNone, fmt.Errorf("levee/fleetredis: force %s: %w", key, err)
	}
	f, ok := fleet.ParseForce(v)
	if !ok {
		return fleet.ForceNone, fmt.Errorf("%w: force %q", ErrReply, v)
	}
	return f, nil
}
