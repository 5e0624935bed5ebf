package dlqtest_test

import (
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqtest"
)

// Letter builds a dead letter of group g1, failed one minute after Base.
func ExampleLetter() {
	l := dlqtest.Letter("a1", "g1", "orders", "payments", time.Minute)
	fmt.Println(l.ID, l.Fingerprint, l.DLQTopic, l.Handler, l.FailedAt.Format(time.RFC3339), l.Status)
	// Output: a1 g1 orders.dlq payments 2026-03-01T12:01:00Z new
}
