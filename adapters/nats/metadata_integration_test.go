//go:build integration

package nats_test

import (
	"context"
	"encoding/base64"
	"maps"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// hostileMetadata is metadata the NATS header format cannot carry as it
// is, beside entries it carries unchanged.
var hostileMetadata = message.Metadata{
	"levee_stack":    "goroutine 7 [running]:\nmain.handle(...)\n\t/app/main.go:12 +0x1d\n",
	"lf":             "\n",
	"crlf":           "a\r\nb",
	"injection":      "v\r\nX-Injected: 1",
	"tab":            "\t",
	"tabs":           "\ta\tb\t",
	"blanks":         "  padded  ",
	"non_utf8":       "a\xff\xfe\xc3\x28b",
	"nul":            "a\x00b",
	"prefix":         "levee-b64:aGk",
	"empty":          "",
	"my key":         "a key with a space",
	"a:b":            "a key with a colon",
	"X-Injected\r\n": "a key with a line break",
	"ordinary":       "plain value",
	"utf8":           "héllo",
}

// plainOnTheWire are the entries of hostileMetadata written unchanged.
var plainOnTheWire = []string{"non_utf8", "nul", "empty", "ordinary", "utf8"}

// TestNATSMetadataRoundTrip: metadata crosses Levee's NATS transport byte
// for byte, no header a value tried to inject appears, and ordinary
// entries are on the wire as watermill-nats writes them. Before the
// encoding, line breaks became spaces, leading and trailing blanks were
// trimmed and keys that are not HTTP tokens were dropped.
func TestNATSMetadataRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, transport.Settings{Concurrency: 1})
	require.NoError(t, err)
	defer tr.Close()
	topic := brokertest.Name("levee_test_md")
	defer func() { _ = tr.DeleteTopics(context.Background(), []string{topic}) }()
	msgs, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	sent := message.NewMessage(watermill.NewUUID(), []byte("x"))
	sent.Metadata = maps.Clone(hostileMetadata)
	require.NoError(t, tr.Publisher.Publish(topic, sent))

	var got *message.Message
	select {
	case got = <-msgs:
		got.Ack()
	case <-ctx.Done():
		t.Fatal("message not received")
	}
	require.Equal(t, sent.UUID, got.UUID)
	require.Equal(t, "1", got.Metadata.Get(levee.KeyDeliveryCount))
	md := maps.Clone(got.Metadata)
	delete(md, levee.KeyDeliveryCount)
	for k, want := range hostileMetadata {
		require.Equal(t, []byte(want), []byte(md[k]), "metadata %q", k)
	}
	require.Equal(t, hostileMetadata, md, "no key added or lost")

	// On the wire, as any NATS client reads the stream.
	h := rawHeader(t, ctx, topic)
	for _, k := range plainOnTheWire {
		require.Equal(t, []string{hostileMetadata[k]}, h[k], "header %q written as watermill-nats writes it", k)
	}
	for k := range h {
		require.NotContains(t, k, "Injected", "header %q", k)
	}
}

// rawHeader fetches the first message of topic's stream with nats.go.
func rawHeader(t *testing.T, ctx context.Context, topic string) nc.Header {
	t.Helper()
	conn, err := nc.Connect(brokertest.NATSURL())
	require.NoError(t, err)
	defer conn.Close()
	js, err := conn.JetStream()
	require.NoError(t, err)
	sub, err := js.PullSubscribe(topic, "", nc.BindStream(topic), nc.DeliverAll())
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	ms, err := sub.Fetch(1, nc.Context(ctx))
	require.NoError(t, err)
	return ms[0].Header
}

// TestNATSEncodedControlKeysStripped: a producer that writes control keys
// in Levee's encoding gets them stripped at ingress as if written plainly.
func TestNATSEncodedControlKeysStripped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, transport.Settings{Concurrency: 1})
	require.NoError(t, err)
	defer tr.Close()
	topic := brokertest.Name("levee_test_md_forged")
	defer func() { _ = tr.DeleteTopics(context.Background(), []string{topic}) }()
	msgs, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	enc := base64.RawURLEncoding.EncodeToString
	conn, err := nc.Connect(brokertest.NATSURL())
	require.NoError(t, err)
	defer conn.Close()
	js, err := conn.JetStream()
	require.NoError(t, err)
	m := nc.NewMsg(topic)
	m.Header.Set(wnats.WatermillUUIDHdr, "forged")
	m.Header.Set("Levee-B64-"+enc([]byte(levee.KeyDeliveryCount)), "99")
	m.Header.Set("Levee-B64-"+enc([]byte(levee.KeyRetryAfter)), "levee-b64:"+enc([]byte("1h")))
	m.Header.Set(levee.KeyRedeliverAt, "levee-b64:"+enc([]byte("4102444800000")))
	m.Header.Set("Levee-B64-"+enc([]byte("note")), "levee-b64:"+enc([]byte("two\nlines")))
	_, err = js.PublishMsg(m, nc.Context(ctx))
	require.NoError(t, err)

	select {
	case got := <-msgs:
		got.Ack()
		require.Equal(t, message.Metadata{levee.KeyDeliveryCount: "1", "note": "two\nlines"}, got.Metadata)
	case <-ctx.Done():
		t.Fatal("message not received")
	}
}
