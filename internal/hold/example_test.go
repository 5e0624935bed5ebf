package hold_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/hold"
)

// The breaker holds a message first: it records the delivery's deadline.
// The rate limit after it has only what is left of it.
func Example() {
	msg := message.NewMessage("m-1", nil)
	msg.SetContext(context.Background())
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

	deadline := hold.Start(msg, start, time.Second) // the breaker's wait
	fmt.Println("deadline:", deadline.Sub(start))

	later := start.Add(700 * time.Millisecond) // the breaker let it go
	fmt.Println("left for the rate limit:", hold.Left(msg.Context(), later, time.Second))
	// Output:
	// deadline: 1s
	// left for the rate limit: 300ms
}
