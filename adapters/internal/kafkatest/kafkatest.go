// Package kafkatest helps integration tests of the Kafka transport.
package kafkatest

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// WaitStable waits up to within for group to be Stable with members
// members (each subscription of a Levee Kafka transport is a member of
// its group), and fails t otherwise. A member joining a group rebalances
// it, which ends the sessions of the members already there, and they
// learn of it only at their next heartbeat (every 3 s in sarama): a test
// that publishes before the group is stable sees the messages its
// handlers hold then handed back (docs/TRANSPORTS.md).
func WaitStable(t testing.TB, brokers []string, group string, members int, within time.Duration) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("kafkatest: admin client: %v", err)
	}
	defer func() { _ = admin.Close() }()
	deadline := time.Now().Add(within)
	var state string
	var n int
	for {
		gs, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(gs) == 1 {
			state, n = gs[0].State, len(gs[0].Members)
			if state == "Stable" && n == members {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: group %s not stable with %d members within %v (state %q, %d members, err %v)", group, members, within, state, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
