package testkit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

func ExampleHarness() {
	t := &testing.T{}
	h := testkit.New(t)
	defer h.Close()
	h.Handle("h", "in", func(*message.Message) error { return nil })
	h.Start()
	h.PublishN("in", 3, nil)
	fmt.Println(h.WaitSettled(3, 5*time.Second))
	// Output: calls=3 acked=3 nacked=0 dead-lettered=0
}
