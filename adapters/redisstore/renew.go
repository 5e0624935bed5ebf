package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/dlq/dlqops"
)

var _ dlqops.Renewer = (*Store)(nil)

// renewScript sets the lease end of the letters the owner still holds.
// ARGV: prefix, owner, lease end (µs), IDs. Returns how many it renewed.
var renewScript = redis.NewScript(prelude + `
local owner, till, n = ARGV[2], ARGV[3], 0
for i = 4, #ARGV do
  local key = rk(ARGV[i])
  if redis.call('HGET', key, 'co') == owner then
    redis.call('HSET', key, 'cu', till)
    n = n + 1
  end
end
return n
`)

// Renew implements dlqops.Renewer.
func (s *Store) Renew(ctx context.Context, owner string, until time.Time, ids ...string) (int, error) {
	if owner == "" || len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	args := append(make([]any, 0, 3+len(ids)), s.kp, owner, microString(until))
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := renewScript.Run(ctx, s.client, nil, args...).Int()
	if err != nil {
		return 0, storeErr("renew", err)
	}
	return n, nil
}
