package adapters

import (
	"context"
	"hash/fnv"
	"strconv"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// A GoChannel subscriber hands its subscription one message at a time and
// delivers every message to every subscription (fan-out), so competing
// consumers do not exist. With concurrency N > 1 the transport shards each
// topic into N internal topics "<topic>#<i>": Publish puts a message on one
// shard (by levee_partition_key when set, so one key keeps its order;
// round-robin otherwise) and Subscribe subscribes to all N shards.

func buildGoChannel(o *options) (*built, error) {
	n := o.tc.concurrency()
	gc := gochannel.NewGoChannel(gochannel.Config{}, o.logger)
	sharded := &goChannelShards{gc: gc, n: n}
	var sub message.Subscriber = gc
	if n > 1 {
		subs := make([]message.Subscriber, n)
		for i := range subs {
			subs[i] = goChannelShard{gc: gc, shard: i}
		}
		f, err := NewFanIn(subs...)
		if err != nil {
			return nil, err
		}
		sub = f
	}
	return &built{
		pub: sharded,
		sub: sub,
		caps: Capabilities{
			Kind:        KindGoChannel,
			System:      "gochannel",
			MaxInFlight: n,
		},
		closers: []func() error{gc.Close},
	}, nil
}

func shardTopic(topic string, shard int) string {
	return topic + "#" + strconv.Itoa(shard)
}

// goChannelShards publishes each message on one of n shard topics.
type goChannelShards struct {
	gc   *gochannel.GoChannel
	n    int
	next atomic.Uint64
}

func (p *goChannelShards) Publish(topic string, msgs ...*message.Message) error {
	if p.n == 1 {
		return p.gc.Publish(topic, msgs...)
	}
	for _, msg := range msgs {
		if err := p.gc.Publish(shardTopic(topic, p.pick(msg)), msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *goChannelShards) pick(msg *message.Message) int {
	if key := msg.Metadata.Get(MetadataPartitionKey); key != "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		return int(h.Sum32() % uint32(p.n))
	}
	return int((p.next.Add(1) - 1) % uint64(p.n))
}

// Close is a no-op: the transport closes the GoChannel once.
func (p *goChannelShards) Close() error { return nil }

// goChannelShard subscribes to one shard of a topic.
type goChannelShard struct {
	gc    *gochannel.GoChannel
	shard int
}

func (s goChannelShard) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.gc.Subscribe(ctx, shardTopic(topic, s.shard))
}

// Close is a no-op: the transport closes the GoChannel once.
func (s goChannelShard) Close() error { return nil }
