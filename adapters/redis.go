package adapters

import (
	"context"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

func buildRedis(ctx context.Context, o *options) (*built, error) {
	tc := o.tc
	rc := tc.Redis
	if err := probe(ctx, KindRedis, rc.Addr, tc.dialTimeout()); err != nil {
		return nil, err
	}
	n := tc.concurrency()
	// watermill-redisstream's Publisher.Close and Subscriber.Close each
	// close their client, so each gets its own.
	const redisConnsPerSubscription = 6
	newClient := func(pool int) *redis.Client {
		return redis.NewClient(&redis.Options{
			Addr:        rc.Addr,
			Username:    rc.Username,
			Password:    rc.Password,
			DB:          rc.DB,
			DialTimeout: tc.dialTimeout(),
			PoolSize:    pool,
		})
	}
	client := newClient(8)
	pctx, cancel := context.WithTimeout(ctx, tc.dialTimeout())
	err := client.Ping(pctx).Err()
	cancel()
	if err != nil {
		_ = client.Close()
		msg := err.Error()
		if strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "ERR AUTH") || strings.Contains(msg, "invalid password") || strings.Contains(msg, "invalid username") {
			return nil, fmt.Errorf("%w: redis at %s: %v (check transport.redis.username/password)", ErrAuth, rc.Addr, err)
		}
		return nil, unreachable(KindRedis, rc.Addr, err)
	}
	group := tc.consumerGroup()
	ackDeadline := tc.ackDeadline()
	prefix := group + "-" + watermill.NewShortUUID()
	subs := make([]message.Subscriber, n)
	for i := range subs {
		// Each subscription is a group member of its own, with its own
		// client (watermill-redisstream's Subscriber.Close closes it): one
		// connection blocks in XREADGROUP, one claims idle messages, one
		// acks, one renews the lease; go-redis opens connections lazily.
		subs[i] = newRedisLeaseSubscriber(func() *redis.Client { return newClient(redisConnsPerSubscription) }, redisstream.SubscriberConfig{
			Consumer:      fmt.Sprintf("%s-%d", prefix, i),
			ConsumerGroup: group,
			// A message pending longer than the ack deadline is claimed by
			// another group member and redelivered; a live member renews
			// the entries it holds (redisLeaseSubscriber), so that happens
			// once the member is gone.
			MaxIdleTime:                   ackDeadline,
			ClaimInterval:                 min(ackDeadline/2, redisstream.DefaultClaimInterval),
			DisableIndefiniteInitialBlock: true,
		}, ackDeadline, o.logger)
	}
	fan, err := NewFanIn(subs...)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, o.logger)
	if err != nil {
		_ = fan.Close()
		_ = client.Close()
		return nil, fmt.Errorf("redis at %s: publisher: %w", rc.Addr, err)
	}
	return &built{
		pub:  pub,
		sub:  fan,
		caps: o.tc.Capabilities(),
	}, nil
}
