package nats

import (
	"bytes"
	"maps"
	"net/http"
	"testing"

	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"

	"github.com/levee-dev/levee"
)

// wire sends m's header through the NATS header format as nats.go does:
// written with net/http's header writer (Msg.headerBytes) and read back
// with DecodeHeadersMsg.
func wire(t *testing.T, m *nc.Msg) *nc.Msg {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	if err := http.Header(m.Header).Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\r\n")
	h, err := nc.DecodeHeadersMsg(b.Bytes())
	if err != nil {
		t.Fatalf("decode %q: %v", b.String(), err)
	}
	return &nc.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// roundTrip marshals msg with mu, sends it over the wire and unmarshals it.
func roundTrip(t *testing.T, mu wnats.MarshalerUnmarshaler, msg *message.Message) (*nc.Msg, *message.Message) {
	t.Helper()
	m, err := mu.Marshal("topic", msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mu.Unmarshal(wire(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return m, got
}

func TestHeaderRoundTrip(t *testing.T) {
	cases := []struct {
		name, key, value string
		plain            bool // written as NATSMarshaler writes it
	}{
		{"ordinary", "k", "v", true},
		{"empty value", "k", "", true},
		{"inner spaces and tab", "k", "a b\tc", true},
		{"utf-8", "k", "héllo wörld", true},
		{"non-utf-8", "k", "a\xff\xfe\xc3\x28b", true},
		{"nul", "k", "a\x00b", true},
		{"token key", "levee.x-y_Z~1", "v", true},
		{"lf", "levee_stack", "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d\n", false},
		{"crlf", "k", "a\r\nb", false},
		{"cr", "k", "a\rb", false},
		{"header injection", "k", "v\r\nX-Injected: 1", false},
		{"only lf", "k", "\n", false},
		{"leading space", "k", " v", false},
		{"trailing space", "k", "v ", false},
		{"leading tab", "k", "\tv", false},
		{"trailing tab", "k", "v\t", false},
		{"only blanks", "k", " \t ", false},
		{"value prefix", "k", valuePrefix + "aGk", false},
		{"value prefix alone", "k", valuePrefix, false},
		{"key with space", "my key", "v", false},
		{"key with colon", "a:b", "v", false},
		{"key with slash", "content/type", "v", false},
		{"key with lf", "a\nX-Injected", "1", false},
		{"empty key", "", "v", false},
		{"non-ascii key", "ключ", "значение", false},
		{"key prefix", keyPrefix + "aw", "v", false},
		{"key and value", "a b", "x\ny", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := message.NewMessage("uuid-1", []byte("payload"))
			msg.Metadata.Set(tc.key, tc.value)
			msg.Metadata.Set("other", "o")
			sent, got := roundTrip(t, marshaler{}, msg)
			if want := (message.Metadata{tc.key: tc.value, "other": "o"}); !maps.Equal(got.Metadata, want) {
				t.Fatalf("got metadata %q, want %q", got.Metadata, want)
			}
			if got.UUID != "uuid-1" || string(got.Payload) != "payload" {
				t.Fatalf("got uuid %q payload %q", got.UUID, got.Payload)
			}
			v, isPlain := sent.Header[tc.key]
			isPlain = isPlain && len(v) == 1 && v[0] == tc.value
			if isPlain != tc.plain {
				t.Fatalf("got header %q, want plain %v", sent.Header, tc.plain)
			}
		})
	}
}

// The test's wire loses what the issue reported: NATSMarshaler alone
// turns a stack's line breaks into spaces.
func TestHeaderWireLosesLineBreaks(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set("levee_stack", "a\nb")
	_, got := roundTrip(t, &wnats.NATSMarshaler{}, msg)
	if v := got.Metadata.Get("levee_stack"); v != "a b" {
		t.Fatalf("got %q through NATSMarshaler, want %q", v, "a b")
	}
}

func TestHeaderUUIDRoundTrip(t *testing.T) {
	for _, id := range []string{"8f14e45f-ceea-467f-a0e6-3b0a6f4e8b3d", "a\nb", " lead", valuePrefix + "x", ""} {
		_, got := roundTrip(t, marshaler{}, message.NewMessage(id, nil))
		if got.UUID != id {
			t.Errorf("uuid %q: got %q", id, got.UUID)
		}
	}
}

// A producer cannot use the encoding to get past the trust boundary, and
// what it sends that is not Levee's encoding is kept as it came.
func TestIngressDecodesBeforeStrip(t *testing.T) {
	enc := func(s string) string { return b64.EncodeToString([]byte(s)) }
	h := nc.Header{}
	h.Set(wnats.WatermillUUIDHdr, "u")
	h.Set(keyPrefix+enc(levee.KeyDeliveryCount), "99")
	h.Set(keyPrefix+enc(levee.KeyRetryAfter), valuePrefix+enc("1h"))
	h.Set(levee.KeyRedeliverAt, valuePrefix+enc("4102444800000"))
	h.Set(keyPrefix+enc(wnats.WatermillUUIDHdr), "forged-uuid")
	h.Set(keyPrefix+enc(nc.MsgIdHdr), "forged-id")
	h.Set("dup", "plain")
	h.Set(keyPrefix+enc("dup"), "encoded")
	h.Set(keyPrefix+"not*base64", "v1")
	h.Set(keyPrefix+"aX", "v2") // "aX" is not strict base64url (trailing bits)
	h.Set("bad", valuePrefix+"!!")
	h.Set("nested", valuePrefix+enc(valuePrefix+enc("x")))
	msg, err := ingress(wire(t, &nc.Msg{Subject: "topic", Header: h}))
	if err != nil {
		t.Fatal(err)
	}
	want := message.Metadata{
		"dup":                    "encoded",
		keyPrefix + "not*base64": "v1",
		keyPrefix + "aX":         "v2",
		"bad":                    valuePrefix + "!!",
		"nested":                 valuePrefix + enc("x"),
	}
	if !maps.Equal(msg.Metadata, want) {
		t.Fatalf("got metadata %q, want %q", msg.Metadata, want)
	}
	if msg.UUID != "u" {
		t.Fatalf("got uuid %q, want u", msg.UUID)
	}
}

func TestDecodeMetadataPlainAllocs(t *testing.T) {
	md := message.Metadata{"a": "1", "b": "two words", "levee_handler": "h"}
	if n := testing.AllocsPerRun(100, func() { decodeMetadata(md) }); n != 0 {
		t.Fatalf("got %v allocations for metadata without an encoded entry, want 0", n)
	}
}

func FuzzHeaderRoundTrip(f *testing.F) {
	f.Add("k", "v", "u")
	f.Add("levee_stack", "a\r\nX-Injected: 1\n\t", " id ")
	f.Add("", "", "")
	f.Add(keyPrefix, valuePrefix, valuePrefix)
	f.Add("a:b c", "\xff\x00", "\n")
	f.Fuzz(func(t *testing.T, key, value, id string) {
		if skipped(key) {
			return // not metadata on the wire, as with NATSMarshaler
		}
		msg := message.NewMessage(id, nil)
		msg.Metadata.Set(key, value)
		_, got := roundTrip(t, marshaler{}, msg)
		if got.UUID != id || !maps.Equal(got.Metadata, msg.Metadata) {
			t.Fatalf("sent %q %q, got %q %q", id, msg.Metadata, got.UUID, got.Metadata)
		}
	})
}

// A header sent twice (a hostile or foreign producer) is read joined; the
// message was refused by NATSMarshaler and Nakked for ever.
func TestRepeatedHeaderIsJoined(t *testing.T) {
	m := &nc.Msg{Subject: "s", Data: []byte("x"), Header: nc.Header{}}
	m.Header.Set(wnats.WatermillUUIDHdr, "u-1")
	m.Header.Add("tenant", "a")
	m.Header.Add("tenant", "b")
	m.Header.Add(levee.KeyDeliveryCount, "1")
	m.Header.Add(levee.KeyDeliveryCount, "99")
	msg, err := ingress(m)
	if err != nil {
		t.Fatalf("ingress: %v", err)
	}
	if msg.UUID != "u-1" || msg.Metadata.Get("tenant") != "a, b" {
		t.Fatalf("got uuid %q tenant %q, want u-1 and \"a, b\"", msg.UUID, msg.Metadata.Get("tenant"))
	}
	if v, ok := msg.Metadata[levee.KeyDeliveryCount]; ok {
		t.Fatalf("a producer's repeated %s survived ingress: %q", levee.KeyDeliveryCount, v)
	}
	if len(m.Header.Values("tenant")) != 2 {
		t.Fatal("ingress changed the message's own header")
	}
}
