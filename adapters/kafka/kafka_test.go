package kafka

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/transport"
)

func TestMarshalerKey(t *testing.T) {
	msg := message.NewMessage("u", []byte("p"))
	pm, err := marshaler{}.Marshal("t", msg)
	if err != nil || pm.Key != nil {
		t.Fatalf("unkeyed: got key %v, err %v", pm.Key, err)
	}
	msg.Metadata.Set(MetadataPartitionKey, "customer-7")
	pm, err = marshaler{}.Marshal("t", msg)
	if err != nil || pm.Key != sarama.StringEncoder("customer-7") {
		t.Fatalf("keyed: got key %v, err %v", pm.Key, err)
	}
}

// Keyed records stay on one partition; unkeyed ones go round-robin.
func TestPartitioner(t *testing.T) {
	p := newPartitioner("t")
	seen := map[int32]bool{}
	for range 8 {
		n, err := p.Partition(&sarama.ProducerMessage{}, 4)
		if err != nil {
			t.Fatal(err)
		}
		seen[n] = true
	}
	if len(seen) != 4 {
		t.Fatalf("unkeyed records used partitions %v, want all 4", seen)
	}
	first, _ := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("k")}, 4)
	for range 8 {
		if n, _ := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("k")}, 4); n != first {
			t.Fatalf("key k went to %d and %d", first, n)
		}
	}
}

func TestValidateAndCapabilities(t *testing.T) {
	s := transport.Settings{Concurrency: 8}
	if err := (Config{Brokers: []string{"h:9092"}, Partitions: 4}).Validate(s); !errors.Is(err, transport.ErrInvalidConfig) {
		t.Fatalf("partitions below concurrency: got %v", err)
	}
	c := Config{Brokers: []string{"h:9092"}}
	if err := c.Validate(s); err != nil {
		t.Fatal(err)
	}
	if got := c.Capabilities(transport.Settings{Concurrency: 4}).MaxInFlight; got != 4 {
		t.Fatalf("got MaxInFlight %d, want 4 (partitions default to the concurrency)", got)
	}
}
