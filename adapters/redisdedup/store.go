package redisdedup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// DefaultPrefix is the default key prefix.
const DefaultPrefix = "levee:dedup:"

// ErrInvalidConfig is wrapped by New's configuration errors; errors.Is
// matches it with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/redisdedup: invalid configuration")

// claimScript claims KEYS[1] for token ARGV[1] and ARGV[2] ms. It returns
// {status, remaining ms}: 1 claimed, 2 busy, 3 done, 4 claimed over an
// expired claim. The key outlives the lease by a minute (by the lease when
// longer), so a claim taken over that long after its lease ended (a
// handler still running, a crash) is recognised and counted: with twice
// the lease it was gone, and a duplicate run beside a handler that
// outlived its lease by more than the lease went uncounted.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
local status = 1
if v then
  if v == 'd' then return {3, 0} end
  local untl = tonumber(string.match(v, '^c:%d+:(%d+)$') or '0')
  if untl > now then return {2, untl - now} end
  status = 4
end
redis.call('SET', KEYS[1], 'c:' .. ARGV[1] .. ':' .. string.format('%d', now + lease), 'PX', lease + math.max(lease, 60000))
return {status, 0}
`)

// releaseScript deletes KEYS[1] if it is a claim with token ARGV[1].
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Store is the Redis dedup.Store. Make one with New.
type Store struct {
	client redis.UniversalClient
	prefix string
	owned  *redis.Client // the client Open made, closed by Close
}

// New returns a Store on client with keys under prefix ("" means
// DefaultPrefix). A nil client is an error wrapping ErrInvalidConfig. The
// caller owns the client. Deadlines come from the contexts the dedup
// middleware passes (its store timeout) only if the client honours them:
// set ContextTimeoutEnabled in its options. Without it go-redis bounds a
// call by the client's ReadTimeout instead (3s by default, none when -1),
// so a server that stops answering holds each message that long.
func New(client redis.UniversalClient, prefix string) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{client: client, prefix: prefix}, nil
}

// Open connects to the Redis server at url (redis://host:port/db) and
// returns a Store on it whose Close closes the connection. Its client
// honours context deadlines (ContextTimeoutEnabled), so the dedup store
// timeout bounds every call. It pings the server within ctx; errors from a
// bad URL wrap ErrInvalidConfig.
func Open(ctx context.Context, url, prefix string) (*Store, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", ErrInvalidConfig, err)
	}
	o.ContextTimeoutEnabled = true // the store timeout bounds every call
	client := redis.NewClient(o)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("levee/redisdedup: %s: %w", o.Addr, err)
	}
	s, err := New(client, prefix)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.owned = client
	return s, nil
}

// Close closes the connection when Open made it; a Store from New leaves
// the caller's client open. It is idempotent.
func (s *Store) Close() error {
	if s.owned != nil {
		err := s.owned.Close()
		if errors.Is(err, redis.ErrClosed) {
			return nil
		}
		return err
	}
	return nil
}

// Claim implements dedup.Store in one round trip.
func (s *Store) Claim(ctx context.Context, key string, token uint64, lease time.Duration) (dedup.Claim, error) {
	res, err := claimScript.Run(ctx, s.client, []string{s.prefix + key}, token, max(1, lease.Milliseconds())).Int64Slice()
	if err != nil {
		return dedup.Claim{}, fmt.Errorf("levee/redisdedup: claim: %w", err)
	}
	if len(res) != 2 {
		return dedup.Claim{}, errors.New("levee/redisdedup: claim: unexpected script reply")
	}
	switch res[0] {
	case 1:
		return dedup.Claim{Status: dedup.StatusClaimed}, nil
	case 2:
		return dedup.Claim{Status: dedup.StatusBusy, Remaining: time.Duration(res[1]) * time.Millisecond}, nil
	case 3:
		return dedup.Claim{Status: dedup.StatusDone}, nil
	case 4:
		return dedup.Claim{Status: dedup.StatusClaimed, TookOver: true}, nil
	}
	return dedup.Claim{}, fmt.Errorf("levee/redisdedup: claim: unexpected status %d", res[0])
}

// Done implements dedup.Store in one round trip (SET with PX).
func (s *Store) Done(ctx context.Context, key string, _ uint64, window time.Duration) error {
	if err := s.client.Set(ctx, s.prefix+key, "d", max(time.Millisecond, window)).Err(); err != nil {
		return fmt.Errorf("levee/redisdedup: done: %w", err)
	}
	return nil
}

// IsDone implements dedup.DoneChecker in one round trip (GET).
func (s *Store) IsDone(ctx context.Context, key string) (bool, error) {
	v, err := s.client.Get(ctx, s.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("levee/redisdedup: is done: %w", err)
	}
	return v == "d", nil
}

// Release implements dedup.Store in one round trip.
func (s *Store) Release(ctx context.Context, key string, token uint64) error {
	err := releaseScript.Run(ctx, s.client, []string{s.prefix + key}, "c:"+strconv.FormatUint(token, 10)+":").Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("levee/redisdedup: release: %w", err)
	}
	return nil
}
