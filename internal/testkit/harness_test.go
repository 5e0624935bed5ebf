package testkit_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

func TestHarnessCountsAckNackAndDeadLetters(t *testing.T) {
	h := testkit.New(t)
	var mu sync.Mutex
	failedOnce := map[string]bool{}
	h.Handle("h", "in", func(msg *message.Message) error {
		switch string(msg.Payload) {
		case "poison":
			dl := message.NewMessage(watermill.NewUUID(), msg.Payload)
			return h.PubSub.Publish("in.dlq", dl)
		case "flaky":
			mu.Lock()
			defer mu.Unlock()
			if !failedOnce[msg.UUID] {
				failedOnce[msg.UUID] = true
				return errors.New("transient")
			}
		}
		return nil
	})
	h.WatchDeadLetters("in.dlq")
	h.Start()
	h.Publish("in",
		message.NewMessage("1", []byte("ok")),
		message.NewMessage("2", []byte("flaky")),
		message.NewMessage("3", []byte("poison")),
	)
	c := h.WaitFor(func(c testkit.Counts) bool { return c.Acked == 3 && c.DeadLettered == 1 }, 5*time.Second)
	if c.Nacked != 1 || c.Calls != 4 {
		t.Fatalf("got %s, want calls=4 nacked=1", c)
	}
	if got := h.DeadLetters(); len(got) != 1 || string(got[0].Payload) != "poison" {
		t.Fatalf("dead letters: got %v", got)
	}
}

func TestHarnessPublishN(t *testing.T) {
	h := testkit.New(t)
	h.Handle("h", "in", func(*message.Message) error { return nil })
	h.Start()
	msgs := h.PublishN("in", 50, nil)
	if len(msgs) != 50 {
		t.Fatalf("got %d messages, want 50", len(msgs))
	}
	if c := h.WaitSettled(50, 5*time.Second); c.Acked != 50 || c.Nacked != 0 {
		t.Fatalf("got %s, want 50 acked", c)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAdvance(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		fired := make(chan struct{})
		time.AfterFunc(time.Second, func() { close(fired) })
		start := time.Now()
		testkit.Advance(time.Second)
		select {
		case <-fired:
		default:
			t.Fatal("timer due at 1s had not fired after Advance(1s)")
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("fake clock moved %s, want 1s", got)
		}
	})
}
