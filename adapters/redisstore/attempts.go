package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/redis/go-redis/v9"
)

// Attempts is a dlq.AttemptStore in Redis: one hash a failing message,
// "<prefix>:attempts:<len(handler)>:<handler>:<uuid>" with fields n (the
// count) and first (Unix microseconds), incremented and given its expiry
// in one script. Redis deletes a record when it expires. It is safe for
// concurrent use, by any number of processes.
type Attempts struct {
	client  *redis.Client
	kp      string
	timeout time.Duration // the store's WithTimeout
}

var _ dlq.AttemptStore = (*Attempts)(nil)

// Attempts returns the store's shared attempt counter, on the same client
// and prefix: pass it to dlq.WithAttemptStore.
func (s *Store) Attempts() *Attempts {
	return &Attempts{client: s.client, kp: s.prefix + ":attempts:", timeout: s.timeout}
}

// failScript increments a message's failure count. KEYS[1]: its record;
// ARGV: now and expiry (Unix microseconds and milliseconds). An expiry in
// the past deletes the record after the reply is read.
var failScript = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n == 1 then redis.call('HSET', KEYS[1], 'first', ARGV[1]) end
local first = redis.call('HGET', KEYS[1], 'first')
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return {n, first}
`)

// Fail implements dlq.AttemptStore. The record expires ttl after now (the
// caller's clock). Errors wrap dlqops.ErrStore.
func (a *Attempts) Fail(ctx context.Context, handler, uuid string, now time.Time, ttl time.Duration) (int, time.Time, error) {
	key := a.kp + strconv.Itoa(len(handler)) + ":" + handler + ":" + uuid
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	v, err := failScript.Run(ctx, a.client, []string{key}, microString(now), now.Add(ttl).UnixMilli()).Slice()
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", err)
	}
	if len(v) != 2 {
		return 0, time.Time{}, storeErr("attempts", fmt.Errorf("unexpected reply %v", v))
	}
	n, _ := v[0].(int64)
	s, _ := v[1].(string)
	first, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", fmt.Errorf("first failure %q: %w", s, err))
	}
	return int(n), fromMicros(first), nil
}

var _ dlq.AttemptReader = (*Attempts)(nil)

// Attempts implements dlq.AttemptReader: the record's count and first
// failure (0 when there is none; Redis deletes expired records). Errors
// wrap dlqops.ErrStore.
func (a *Attempts) Attempts(ctx context.Context, handler, uuid string, _ time.Time) (int, time.Time, error) {
	key := a.kp + strconv.Itoa(len(handler)) + ":" + handler + ":" + uuid
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	v, err := a.client.HMGet(ctx, key, "n", "first").Result()
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", err)
	}
	ns, _ := v[0].(string)
	fs, _ := v[1].(string)
	if ns == "" {
		return 0, time.Time{}, nil
	}
	n, err := strconv.Atoi(ns)
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", fmt.Errorf("count %q: %w", ns, err))
	}
	first, err := strconv.ParseInt(fs, 10, 64)
	if err != nil {
		return 0, time.Time{}, storeErr("attempts", fmt.Errorf("first failure %q: %w", fs, err))
	}
	return n, fromMicros(first), nil
}
