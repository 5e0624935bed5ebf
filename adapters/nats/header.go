package nats

import (
	"encoding/base64"
	"strings"

	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
)

// The NATS header format (nats.go writes it with net/http's header writer
// and reads it line by line) cannot carry every metadata entry as it is:
// a value's CR and LF become spaces, its leading and trailing spaces and
// tabs are trimmed, and a key that is not an HTTP token (empty, or with a
// space, ':', '/', a control or non-ASCII byte) is dropped without an
// error. Every other byte, NUL and invalid UTF-8 included, goes through.
//
// So the transport writes such an entry encoded, in base64url without
// padding (RFC 4648 section 5), and leaves every other one as
// watermill-nats' NATSMarshaler writes it, so watermill-nats publishers
// and subscribers see ordinary messages unchanged:
//
//   - a key is written as keyPrefix + base64url(key) when it is not a
//     token or starts with keyPrefix;
//   - a value (and the message UUID) is written as valuePrefix +
//     base64url(value) when it holds CR or LF, starts or ends with a space
//     or a tab, or starts with valuePrefix.
//
// Encoding whatever starts with a prefix makes it reversible: every key
// and value Levee's publisher writes comes back byte for byte. Decoding is
// done once, before the ingress strip of control keys, so a producer that
// encodes levee_delivery_count gets it stripped as if written plainly. A
// prefixed key or value that is not valid strict base64url (another
// producer's) is kept as it came.
const (
	keyPrefix   = "Levee-B64-"
	valuePrefix = "levee-b64:"
)

var b64 = base64.RawURLEncoding.Strict()

// marshaler is the transport's wire format: watermill-nats' NATSMarshaler
// with the encoding above. It is safe for concurrent use.
type marshaler struct{}

var _ wnats.MarshalerUnmarshaler = marshaler{}

// Marshal writes msg as NATSMarshaler does (the UUID in
// _watermill_message_uuid, one header per metadata entry), encoding what
// the header format cannot carry.
func (marshaler) Marshal(topic string, msg *message.Message) (*nc.Msg, error) {
	h := make(nc.Header, len(msg.Metadata)+1)
	h.Set(wnats.WatermillUUIDHdr, encodeValue(msg.UUID))
	for k, v := range msg.Metadata {
		h.Set(encodeKey(k), encodeValue(v))
	}
	return &nc.Msg{Subject: topic, Data: msg.Payload, Header: h}, nil
}

// Unmarshal reads m as NATSMarshaler does and decodes what Marshal
// encoded. A header a producer sent several times (NATSMarshaler refuses
// it, and the message was Nakked and redelivered for ever) is read as its
// values joined by ", ", as HTTP reads a repeated header.
func (marshaler) Unmarshal(m *nc.Msg) (*message.Message, error) {
	if h, ok := joinRepeated(m.Header); ok {
		m = &nc.Msg{Subject: m.Subject, Header: h, Data: m.Data}
	}
	msg, err := (&wnats.NATSMarshaler{}).Unmarshal(m)
	if err != nil {
		return nil, err
	}
	msg.UUID, _ = decodeValue(msg.UUID)
	delete(msg.Metadata, nc.MsgRollup)
	decodeMetadata(msg.Metadata)
	return msg, nil
}

// joinRepeated returns a copy of h with each repeated key's values joined,
// and whether h had one.
func joinRepeated(h nc.Header) (nc.Header, bool) {
	repeated := false
	for _, v := range h {
		if len(v) > 1 {
			repeated = true
			break
		}
	}
	if !repeated {
		return h, false
	}
	out := make(nc.Header, len(h))
	for k, v := range h {
		out[k] = []string{strings.Join(v, ", ")}
	}
	return out, true
}

// encodeKey returns k as written in a header.
func encodeKey(k string) string {
	if isToken(k) && !strings.HasPrefix(k, keyPrefix) {
		return k
	}
	return keyPrefix + b64.EncodeToString([]byte(k))
}

// encodeValue returns v as written in a header.
func encodeValue(v string) string {
	if plainValue(v) {
		return v
	}
	return valuePrefix + b64.EncodeToString([]byte(v))
}

// plainValue reports whether v crosses the header format unchanged and
// cannot be read as an encoded value.
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if isBlank(v[0]) || isBlank(v[len(v)-1]) || strings.HasPrefix(v, valuePrefix) {
		return false
	}
	return !strings.ContainsAny(v, "\r\n")
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' }

// isToken reports whether k is a non-empty HTTP token (RFC 9110 section
// 5.6.2), the header names net/http's writer keeps.
func isToken(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// decodeKey returns the key k encodes and true, or k and false when it
// is not an encoded key.
func decodeKey(k string) (string, bool) {
	return decode(k, keyPrefix)
}

// decodeValue returns the value v encodes and true, or v and false when
// it is not an encoded value.
func decodeValue(v string) (string, bool) {
	return decode(v, valuePrefix)
}

func decode(s, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return s, false
	}
	b, err := b64.DecodeString(rest)
	if err != nil {
		return s, false
	}
	return string(b), true
}

// decodeMetadata decodes md's encoded keys and values in place. An
// encoded key wins over the same key written plainly (Levee's publisher
// never writes both), and a key NATSMarshaler leaves out of metadata
// (the UUID and JetStream's publish headers) is left out encoded too.
// Metadata without an encoded entry is not changed and costs no
// allocation.
func decodeMetadata(md message.Metadata) {
	var plainKeys, encodedKeys []string // decoded key, value pairs
	for k, v := range md {
		dk, kenc := decodeKey(k)
		dv, venc := decodeValue(v)
		switch {
		case kenc:
			delete(md, k)
			encodedKeys = append(encodedKeys, dk, dv)
		case venc:
			plainKeys = append(plainKeys, dk, dv)
		}
	}
	for _, kv := range [][]string{plainKeys, encodedKeys} {
		for i := 0; i < len(kv); i += 2 {
			if !skipped(kv[i]) {
				md[kv[i]] = kv[i+1]
			}
		}
	}
}

// skipped reports the header keys Unmarshal leaves out of metadata: the
// UUID and JetStream's publish headers, directives to the server for the
// publish that stored the message, not data of it. NATSMarshaler leaves
// out the UUID, the message ID and the expectations; Unmarshal also drops
// Nats-Rollup, which a producer may send to a stream that allows rollups:
// carried on in a dead letter, JetStream refused every publish of it to a
// dead-letter stream without rollups (the message was redelivered for
// ever, never dead-lettered), and one with rollups would have purged the
// letters before it (TestNATSPublishDirectives).
func skipped(k string) bool {
	switch k {
	case wnats.WatermillUUIDHdr, nc.MsgIdHdr, nc.ExpectedLastMsgIdHdr, nc.ExpectedStreamHdr, nc.ExpectedLastSubjSeqHdr, nc.ExpectedLastSeqHdr,
		nc.MsgRollup:
		return true
	}
	return false
}
