package kafka

import (
	"fmt"
	"os"
	"strings"
	"testing"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
)

// docs/TRANSPORTS.md states how soon the members of a group learn that
// one joined (their heartbeat interval, which Levee leaves at its
// default); this keeps it true.
func TestDocsStateHeartbeat(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	want := fmt.Sprintf("at their next heartbeat (every %d s, sarama's default)",
		int(wkafka.DefaultSaramaSubscriberConfig().Consumer.Group.Heartbeat.Interval.Seconds()))
	if !strings.Contains(text, want) {
		t.Errorf("docs/TRANSPORTS.md does not say %q", want)
	}
}
