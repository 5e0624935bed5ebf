package idkey

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// TestMessage: a message without a UUID is keyed by its content, the
// same on every delivery of it (whatever a transport or a layer adds per
// delivery) and apart from every other content and every UUID.
func TestMessage(t *testing.T) {
	msg := func(uuid, payload string, md message.Metadata) *message.Message {
		m := message.NewMessage(uuid, []byte(payload))
		m.Metadata = md
		return m
	}
	base := msg("", "order", message.Metadata{"k": "v"})
	redelivered := msg("", "order", message.Metadata{"k": "v", levee.KeyDeliveryCount: "3", levee.KeyRetryAfter: "1s",
		levee.KeyRedeliverAt: "1", levee.KeyDedupID: "d", "_watermill_x": "y"})
	if got, want := Message(redelivered), Message(base); got != want {
		t.Errorf("a redelivery's key %q, want the first delivery's %q", got, want)
	}
	if !strings.HasPrefix(Message(base), contentPrefix) {
		t.Errorf("key %q of a message without a UUID does not start with %q", Message(base), contentPrefix)
	}
	seen := map[string]string{}
	for name, m := range map[string]*message.Message{
		"base":            base,
		"other payload":   msg("", "order2", message.Metadata{"k": "v"}),
		"other value":     msg("", "order", message.Metadata{"k": "w"}),
		"shifted bytes":   msg("", "order", message.Metadata{"kv": ""}),
		"no metadata":     msg("", "order", nil),
		"key in payload":  msg("", "orderkv", nil),
		"a uuid":          msg("u", "order", message.Metadata{"k": "v"}),
		"a 0x7f uuid":     msg("\x7fcontent:", "order", nil),
		"a digested uuid": msg(strings.Repeat("u", MaxRaw+1), "order", nil),
	} {
		k := Message(m)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
	if got := Message(msg("u-1", "x", nil)); got != "u-1" {
		t.Errorf("a message with a UUID: key %q, want its UUID", got)
	}
}
