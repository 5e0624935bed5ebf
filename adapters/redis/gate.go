package redis

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// gatedClient is the client a group member's watermill-redisstream
// subscriber reads through: the member fetches an entry (XREADGROUP, or
// XCLAIM of another consumer's idle entry) only while it holds none, and
// holds the one it fetched until its message is acked.
//
// watermill-redisstream reads and claims on goroutines of their own and
// hands over one message at a time, so a member whose handler held a
// message read up to two entries ahead (watermill-redisstream issue #22).
// They were pending for it, and its lease renewal kept an idle member from
// claiming them: they waited as long as the held message took (for ever
// with a hung handler) while other members sat idle.
//
// It is safe for concurrent use.
type gatedClient struct {
	*redis.Client
	held chan struct{} // one token while the member holds an entry

	mu sync.Mutex
	id string // guarded by mu; the entry fetched last, "" before any
}

func newGatedClient(c *redis.Client) *gatedClient {
	return &gatedClient{Client: c, held: make(chan struct{}, 1)}
}

// take waits until the member holds no entry and marks it holding one;
// false if ctx ended first.
func (c *gatedClient) take(ctx context.Context) bool {
	select {
	case c.held <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// release marks the member as holding no entry: its message was acked, or
// a fetch returned none.
func (c *gatedClient) release() {
	select {
	case <-c.held:
	default:
	}
}

// XReadGroup reads once the member holds no entry. With ctx ended first
// it returns no entry and no error (the subscriber then sees ctx done).
func (c *gatedClient) XReadGroup(ctx context.Context, a *redis.XReadGroupArgs) *redis.XStreamSliceCmd {
	if !c.take(ctx) {
		return redis.NewXStreamSliceCmdResult(nil, nil)
	}
	cmd := c.Client.XReadGroup(ctx, a)
	if xss, err := cmd.Result(); err != nil || len(xss) == 0 || len(xss[0].Messages) == 0 {
		c.release()
	} else {
		c.fetched(xss[0].Messages[0].ID)
	}
	return cmd
}

// XClaim claims once the member holds no entry. With ctx ended first it
// returns no entry and no error: redis.Nil would make the subscriber ack
// the entry as deleted.
func (c *gatedClient) XClaim(ctx context.Context, a *redis.XClaimArgs) *redis.XMessageSliceCmd {
	if !c.take(ctx) {
		return redis.NewXMessageSliceCmdResult(nil, nil)
	}
	cmd := c.Client.XClaim(ctx, a)
	if xm, err := cmd.Result(); err != nil || len(xm) == 0 {
		c.release()
	} else {
		c.fetched(xm[0].ID)
	}
	return cmd
}

// fetched records id as the entry the member holds now.
func (c *gatedClient) fetched(id string) {
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
}

// heldID is the ID of the entry the member fetched last: while the member
// holds an entry, the entry of the message in its handler.
func (c *gatedClient) heldID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}
