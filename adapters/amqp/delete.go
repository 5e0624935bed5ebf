package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
)

// deleteTopics returns the transport's DeleteTopics: for each topic, the
// queue and (with a consumer group) the fanout exchange watermill-amqp's
// Config names for it, deleted with their messages. Deleting what does
// not exist succeeds (RabbitMQ's deletes are idempotent).
func deleteTopics(conn *connection, cfg wamqp.Config, timeout time.Duration) func(context.Context, []string) error {
	return func(ctx context.Context, topics []string) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c, _, err := conn.wait(ctx)
		if err != nil {
			return fmt.Errorf("levee/amqp: delete topics: %w", err)
		}
		var errs []error
		for _, topic := range topics {
			// A channel per topic: a refused delete closes its channel.
			ch, err := c.Channel()
			if err != nil {
				return fmt.Errorf("levee/amqp: delete topics: open channel: %w", err)
			}
			if _, err := ch.QueueDelete(cfg.Queue.GenerateName(topic), false, false, false); err != nil {
				errs = append(errs, fmt.Errorf("levee/amqp: delete queue of %q: %w", topic, err))
			} else if ex := cfg.Exchange.GenerateName(topic); ex != "" {
				if err := ch.ExchangeDelete(ex, false, false); err != nil {
					errs = append(errs, fmt.Errorf("levee/amqp: delete exchange of %q: %w", topic, err))
				}
			}
			_ = ch.Close()
		}
		return errors.Join(errs...)
	}
}
