package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

// TestKafkaTopicsAlreadyExists: a topic that exists already (the broker's
// TopicError, wrapped as watermill-kafka wraps it) counts as created; any
// other error is returned and the topic is tried again next time.
func TestKafkaTopicsAlreadyExists(t *testing.T) {
	msg := "Topic 'orders' already exists."
	exists := fmt.Errorf("cannot create topic: %w", &sarama.TopicError{Err: sarama.ErrTopicAlreadyExists, ErrMsg: &msg})
	other := fmt.Errorf("cannot create topic: %w", &sarama.TopicError{Err: sarama.ErrInvalidPartitions})
	calls := 0
	results := []error{exists, other, nil}
	k := &topics{init: func(string) error { err := results[calls]; calls++; return err }}
	if err := k.ensure("orders"); err != nil {
		t.Fatalf("got %v, want an existing topic to count as created", err)
	}
	if err := k.ensure("orders"); err != nil || calls != 1 {
		t.Fatalf("second ensure: got %v after %d calls, want nil after 1", err, calls)
	}
	if err := k.ensure("payments"); !errors.Is(err, sarama.ErrInvalidPartitions) {
		t.Fatalf("got %v, want the broker's error", err)
	}
	if err := k.ensure("payments"); err != nil || calls != 3 {
		t.Fatalf("retry: got %v after %d calls, want nil after 3", err, calls)
	}
}
