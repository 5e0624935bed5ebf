package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/levee-dev/levee/adapters/internal/kit"
)

// probe checks that addr accepts a connection and answers a Kafka request
// (ApiVersions) within timeout (sooner when ctx ends sooner). A TCP dial
// alone is not enough: an address that accepts but does not speak Kafka (a
// port that lands on another server, a proxy that never answers) would
// leave sarama's first metadata refresh waiting for its 30s read timeout,
// retried, before New returned. Errors wrap transport.ErrUnreachable and
// name the address.
func probe(ctx context.Context, addr string, timeout time.Duration) error {
	if err := kit.Probe(ctx, Kind, addr, timeout); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = timeout, timeout, timeout
	b := sarama.NewBroker(addr)
	if err := b.Open(cfg); err != nil {
		return kit.Unreachable(Kind, addr, err)
	}
	defer func() { _ = b.Close() }()
	if _, err := b.ApiVersions(&sarama.ApiVersionsRequest{}); err != nil {
		return kit.Unreachable(Kind, addr, fmt.Errorf("no Kafka answer within %v (is it a Kafka broker's address?): %w", timeout, err))
	}
	return nil
}
