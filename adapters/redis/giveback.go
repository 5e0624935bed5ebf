package redis

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/internal/kit"
)

// When a member's subscription ends (a shutdown, a rolling deploy) while
// a handler holds its message (an open breaker, a rate-limit or priority
// wait, an open batch, a dlq backoff), the message's context ends, so the
// stack's waits end and the router settles it; watermill-redisstream has
// stopped listening by then. Redis has no Nack: an entry pending for a
// consumer goes to another only by a claim once it has been idle for the
// ack deadline (MaxIdleTime). A held message therefore came back only
// after the ack deadline (30 s by default), and one whose handler finished
// as the subscription ended was not acked and ran again.
//
// The member now waits up to settleGrace for the handler to settle it,
// acks it when acked, and gives back every other entry pending for it
// (the Nacked one, one it read and did not hand over) by claiming them
// for itself with their idle time set to the ack deadline: the next idle
// claim of any live member of the group takes them at once (every
// min(ack deadline/2, 5 s), and at once when a member subscribes). A
// handler that does not settle within settleGrace still runs: its entry
// is left to the claim after the ack deadline, so it does not run twice at
// once. The give-back claims with JUSTID, so it counts no delivery.

// settleGrace bounds how long a closing member waits for the handler of
// the message it handed over to settle it.
const settleGrace = kit.SettleGrace

// giveBackTimeout bounds the Redis calls of a closing member.
const giveBackTimeout = 5 * time.Second

// settleHeld waits up to settleGrace for msg (nil: none held) to be
// settled: acked, or still running when the grace ran out.
func settleHeld(msg *message.Message) (acked, running bool) {
	if msg == nil {
		return false, false
	}
	v := kit.AwaitVerdict(msg)
	return v == kit.Acked, v == kit.Running
}

// giveBack acks heldID when its message was acked, and makes every other
// entry pending for consumer on stream claimable by the group's other
// members at once, except heldID while its handler still runs. Errors
// are logged: an entry not given back is claimed after the ack deadline,
// as before.
func (s *leaseSubscriber) giveBack(client *redis.Client, stream, consumer, heldID string, acked, running bool) {
	ctx, cancel := context.WithTimeout(context.Background(), giveBackTimeout)
	defer cancel()
	fields := watermill.LogFields{"stream": stream, "consumer": consumer}
	if acked && heldID != "" {
		if err := client.XAck(ctx, stream, s.cfg.ConsumerGroup, heldID).Err(); err != nil {
			s.logger.Error("Redis close: XACK of the settled message failed (it will be redelivered)", err, fields)
		}
	}
	pending, err := client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: stream, Group: s.cfg.ConsumerGroup, Start: "-", End: "+", Count: leaseBatch, Consumer: consumer,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		s.logger.Error("Redis close: XPENDING failed (held messages come back after the ack deadline)", err, fields)
		return
	}
	ids := make([]any, 0, len(pending))
	for _, p := range pending {
		if running && p.ID == heldID {
			continue
		}
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return
	}
	// XCLAIM <stream> <group> <consumer> 0 <ids...> IDLE <ms> JUSTID:
	// go-redis' XClaimArgs has no IDLE.
	args := append([]any{"XCLAIM", stream, s.cfg.ConsumerGroup, consumer, 0}, ids...)
	args = append(args, "IDLE", s.cfg.MaxIdleTime.Milliseconds(), "JUSTID")
	if err := client.Do(ctx, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		s.logger.Error("Redis close: giving back held messages failed (they come back after the ack deadline)", err, fields.Add(watermill.LogFields{"entries": len(ids)}))
	}
}
