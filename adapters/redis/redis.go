// Package redis is Levee's Redis Streams transport
// (watermill-redisstream): concurrency N makes N consumer-group members,
// each a subscription of its own that renews the lease on the entries it
// holds, so a message Nacked again and again is not claimed by another
// member while its holder lives.
//
// The adapters facade builds it from `transport: {kind: redis, redis:
// {...}}`. The publisher and the subscriber New returns are safe for
// concurrent use; their Close is idempotent.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/internal/fanin"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// Kind is the transport kind in the `transport` section.
const Kind = "redis"

// Config is the `transport.redis` section (Redis Streams, watermill-redisstream).
type Config struct {
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Username and Password authenticate (ACL or requirepass); empty means none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number (0..15 on a default server).
	DB int `yaml:"db"`
}

// Validate checks the section. Errors wrap transport.ErrInvalidConfig and
// name the key (redis.addr, redis.db).
func (c Config) Validate(transport.Settings) error {
	if c.Addr == "" {
		return kit.Invalid("redis.addr", "kind redis needs an addr (host:6379)")
	}
	if err := kit.CheckHostPort(c.Addr); err != nil {
		return kit.Invalid("redis.addr", "%v", err)
	}
	if c.DB < 0 {
		return kit.Invalid("redis.db", "must not be negative, got %d", c.DB)
	}
	return nil
}

// Capabilities returns what the transport does with settings s: the ack
// deadline is the claim idle time; no native delay or priority.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	s = s.WithDefaults()
	return transport.Capabilities{Kind: Kind, System: "redis", MaxInFlight: s.Concurrency, AckDeadline: s.AckDeadline}
}

// redact hides the address and the password from err's message.
func (c Config) redact(err error) error {
	return redact.Values(redact.Error(err, c.Addr), c.Password)
}

// New validates c, probes and pings the server within the dial timeout and
// returns the transport. Errors wrap transport.ErrInvalidConfig,
// ErrUnreachable (naming the address) or ErrAuth. New does not retry.
func New(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	if err := c.Validate(s); err != nil {
		return nil, err
	}
	p, err := build(ctx, c, s)
	if err != nil {
		return nil, c.redact(err)
	}
	return p, nil
}

// MemberBufferSize is the size of the read buffer and of the write
// buffer of each connection a subscription's member opens (the
// publisher's keep go-redis's default, 256 KiB). A larger entry is read
// through it in pieces.
const MemberBufferSize = 32 << 10

func build(ctx context.Context, rc Config, s transport.Settings) (*transport.Parts, error) {
	if err := kit.Probe(ctx, Kind, rc.Addr, s.DialTimeout); err != nil {
		return nil, err
	}
	n := s.Concurrency
	// watermill-redisstream's Publisher.Close and Subscriber.Close each
	// close their client, so each gets its own.
	const connsPerSubscription = 6
	// buf is each connection's read and write buffer; 0 is go-redis's
	// default (256 KiB each way).
	newClient := func(pool, buf int) *redis.Client {
		return redis.NewClient(&redis.Options{
			Addr:            rc.Addr,
			Username:        rc.Username,
			Password:        rc.Password,
			DB:              rc.DB,
			DialTimeout:     s.DialTimeout,
			PoolSize:        pool,
			ReadBufferSize:  buf,
			WriteBufferSize: buf,
		})
	}
	if err := ping(ctx, rc, s.DialTimeout); err != nil {
		if isAuthError(err) {
			return nil, fmt.Errorf("%w: redis at %s: %v (check transport.redis.username/password)", transport.ErrAuth, rc.Addr, err)
		}
		return nil, kit.Unreachable(Kind, rc.Addr, err)
	}
	client := newClient(8, 0)
	// Each member keeps two connections open while it waits (its read
	// and its claims): with go-redis's default buffers a service of 40
	// handlers at concurrency 4 held 330 MB idle in them.
	fan, err := members(n, func() *redis.Client { return newClient(connsPerSubscription, MemberBufferSize) }, s)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, s.Logger)
	if err != nil {
		_ = fan.Close()
		_ = client.Close()
		return nil, fmt.Errorf("levee/redis: publisher at %s: %w", rc.Addr, err)
	}
	return &transport.Parts{
		Publisher:    pub,
		Subscriber:   fan,
		Capabilities: rc.Capabilities(s),
		DeleteTopics: func(ctx context.Context, topics []string) error {
			// The stream key holds the messages and the consumer groups.
			c := newClient(1, MemberBufferSize)
			defer c.Close()
			dctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
			defer cancel()
			if err := c.Del(dctx, topics...).Err(); err != nil {
				return fmt.Errorf("levee/redis: delete streams: %w", err)
			}
			return nil
		},
	}, nil
}

// ping checks the server answers, and takes the credentials, within
// timeout: on a client of its own, which honours the deadline (go-redis
// ignores a context's deadline unless ContextTimeoutEnabled, and would
// wait its own 3s read timeout on a server that never answers).
func ping(ctx context.Context, rc Config, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{
		Addr: rc.Addr, Username: rc.Username, Password: rc.Password, DB: rc.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		PoolSize: 1, ContextTimeoutEnabled: true,
	})
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

// members returns the fan-in over n consumer-group members of the group
// s names, each with a client of its own from newClient.
func members(n int, newClient func() *redis.Client, s transport.Settings) (*fanin.FanIn, error) {
	group := s.Group()
	ackDeadline := s.AckDeadline
	prefix := group + "-" + watermill.NewShortUUID()
	subs := make([]message.Subscriber, n)
	stop := kit.NewStopper()
	for i := range subs {
		// Each subscription is a group member of its own, with its own
		// client (watermill-redisstream's Subscriber.Close closes it): one
		// connection blocks in XREADGROUP, one claims idle messages, one
		// acks, one renews the lease; go-redis opens connections lazily.
		subs[i] = newLeaseSubscriber(newClient, redisstream.SubscriberConfig{
			Consumer:      fmt.Sprintf("%s-%d", prefix, i),
			ConsumerGroup: group,
			// A message pending longer than the ack deadline is claimed by
			// another group member and redelivered; a live member renews
			// the entries it holds (leaseSubscriber), so that happens
			// once the member is gone.
			MaxIdleTime:                   ackDeadline,
			ClaimInterval:                 min(ackDeadline/2, redisstream.DefaultClaimInterval),
			DisableIndefiniteInitialBlock: true,
			Unmarshaller:                  unmarshaller{},
			ShouldStopOnReadErrors:        readEnded,
		}, ackDeadline, stop, s.Logger)
	}
	fan, err := fanin.New(subs...)
	if err != nil {
		return nil, err
	}
	fan.TrustUndecodable() // the unmarshaller sets it, and drops a producer's
	return fan, nil
}

// readEnded reports whether a read error means the subscription ended:
// its client closed (Close closes it after its consuming goroutine
// returned) or its context ended. watermill-redisstream's reading
// goroutine otherwise sleeps 500 ms after every error before it looks for
// the end, so it outlived the transport's Close (goleak saw it). Any other
// error is retried, as before.
func readEnded(err error) bool {
	return errors.Is(err, redis.ErrClosed) || errors.Is(err, context.Canceled)
}

// isAuthError reports whether err is a server reply refusing the
// credentials. go-redis types server replies (redis.Error) but not their
// kind: the kind is the reply's first word, which redis.HasErrorPrefix
// reads (it drops a leading "ERR "). Redis 6+ answers WRONGPASS or NOAUTH;
// older servers "ERR invalid password" or "ERR AUTH <password> called
// without any password configured".
func isAuthError(err error) bool {
	for _, p := range []string{"WRONGPASS", "NOAUTH", "AUTH", "invalid password", "invalid username"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
