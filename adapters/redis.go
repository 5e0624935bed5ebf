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
	const redisConnsPerTopic = 3
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
	closeSubs := func() {
		for _, s := range subs {
			if s != nil {
				_ = s.Close()
			}
		}
	}
	for i := range subs {
		// Per subscribed topic a consumer blocks one connection in
		// XREADGROUP, one claims idle messages, one acks. The number of
		// topics is not known here, and a pool too small makes every
		// Subscribe wait out the pool timeout (seconds per topic), so the
		// pool is sized for 16 topics; go-redis opens connections lazily.
		s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
			Client:        newClient(redisConnsPerTopic * 16),
			Consumer:      fmt.Sprintf("%s-%d", prefix, i),
			ConsumerGroup: group,
			// A message pending longer than the ack deadline is claimed by
			// another group member and redelivered.
			MaxIdleTime:                   ackDeadline,
			ClaimInterval:                 min(ackDeadline/2, redisstream.DefaultClaimInterval),
			DisableIndefiniteInitialBlock: true,
		}, o.logger)
		if err != nil {
			closeSubs()
			_ = client.Close()
			return nil, fmt.Errorf("redis at %s: subscriber: %w", rc.Addr, err)
		}
		subs[i] = s
	}
	fan, err := NewFanIn(subs...)
	if err != nil {
		closeSubs()
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
