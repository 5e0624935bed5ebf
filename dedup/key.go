package dedup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// MaxKeyLen bounds an identity: a longer one is an error (ErrNoKey), so a
// garbage value cannot grow a store's keys.
const MaxKeyLen = 512

// KeyFunc returns a message's identity. An error that wraps ErrNoKey
// dead-letters the message (class "validation"); the identity must be
// non-empty and at most MaxKeyLen bytes.
type KeyFunc func(msg *message.Message) (string, error)

// UUIDKey is the default identity: the message UUID.
func UUIDKey(msg *message.Message) (string, error) { return msg.UUID, nil }

// MetadataKey returns a KeyFunc reading the identity from the metadata key
// name. A message without the key (or with an empty value) has no
// identity. The error for an empty name wraps ErrInvalidConfig.
func MetadataKey(name string) (KeyFunc, error) {
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("%w: metadata key name is empty", ErrInvalidConfig)
	}
	return func(msg *message.Message) (string, error) {
		if v := msg.Metadata.Get(name); v != "" {
			return v, nil
		}
		return "", &keyError{detail: "metadata key " + strconv.Quote(name) + " is missing"}
	}, nil
}

// JSONPointer returns a KeyFunc reading the identity from the JSON payload
// at pointer (RFC 6901, e.g. "/order/id"). The value must be a string or a
// number (taken as written); anything else, a payload that is not one JSON
// value (trailing data included), or a pointer that matches nothing means
// no identity. The error for a malformed pointer wraps ErrInvalidConfig.
func JSONPointer(pointer string) (KeyFunc, error) {
	tokens, err := parsePointer(pointer)
	if err != nil {
		return nil, err
	}
	return func(msg *message.Message) (string, error) {
		return lookup(msg.Payload, pointer, tokens)
	}, nil
}

func parsePointer(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("%w: JSON pointer %q must start with /", ErrInvalidConfig, p)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
			return nil, fmt.Errorf("%w: JSON pointer %q has a bad escape in %q", ErrInvalidConfig, p, t)
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func lookup(payload []byte, pointer string, tokens []string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", &keyError{detail: "payload is not JSON: " + err.Error()}
	}
	// One value only: `{"id":"a"}{"id":"b"}` or `{"id":"a"} x` is not a
	// JSON payload (validate refuses it too), and its first value is not
	// the identity.
	if _, err := dec.Token(); err != io.EOF {
		return "", &keyError{detail: "payload is not JSON: data after the first value"}
	}
	for _, t := range tokens {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[t]
			if !ok {
				return "", &keyError{detail: "JSON pointer " + pointer + " matches nothing"}
			}
			v = next
		case []any:
			i, ok := arrayIndex(t)
			if !ok || i >= len(x) {
				return "", &keyError{detail: "JSON pointer " + pointer + " matches nothing"}
			}
			v = x[i]
		default:
			return "", &keyError{detail: "JSON pointer " + pointer + " matches nothing"}
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", &keyError{detail: "JSON pointer " + pointer + " is not a string or a number"}
}

// arrayIndex parses an array index token as RFC 6901 writes it: "0" or
// digits without a leading zero. strconv.Atoi alone took "01", "+1" and
// "-0" as indexes, so "/items/+1" read items[1].
func arrayIndex(t string) (int, bool) {
	if t == "" || (t[0] == '0' && len(t) > 1) || strings.Trim(t, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.Atoi(t)
	return i, err == nil
}

// namespaceEscaper escapes a namespace for StoreKey; built once, as it is
// used per message.
var namespaceEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// StoreKey returns the key an identity has in a store under namespace:
// the identity itself without a namespace, else namespace + "/" +
// identity, with every "%" and "/" of the namespace escaped (%25, %2F) so
// that the first "/" ends it: handler "a" with identity "b/x" and handler
// "a/b" with identity "x" shared the key "a/b/x", so one's message was
// acked as the other's duplicate. A namespace without either is written
// as it is, so existing keys keep their meaning.
func StoreKey(namespace, identity string) string {
	if namespace == "" {
		return identity
	}
	if strings.ContainsAny(namespace, "%/") {
		namespace = namespaceEscaper.Replace(namespace)
	}
	return namespace + "/" + identity
}

// identity returns the message's identity: levee.KeyDedupID when set (a
// replay keeps its letter's identity that way), else fn's. It reports
// whether the value came from fn (and should be written to the metadata
// when it is not the UUID).
//
// A KeyDedupID equal to the message's levee.KeyOriginalUUID is the
// replayer's fallback for a letter without one: the identity when it was
// the UUID, but also what a letter dead-lettered before the dedup layer
// ran gets (the dlq's validation: no identity was ever written). When fn
// reads an identity other than the message's own UUID, fn keyed the
// consumer, so its identity wins: taking the UUID instead made the replay
// of such a letter run again for an identity (an order) that had since
// succeeded. fn's own UUID is no identity of a replay (it is new).
func identity(msg *message.Message, fn KeyFunc) (key string, fromFn bool, err error) {
	v := msg.Metadata[levee.KeyDedupID]
	if v != "" && v == msg.Metadata[levee.KeyOriginalUUID] {
		if k, kerr := fn(msg); kerr == nil && k != "" && k != msg.UUID {
			v, key, fromFn = "", k, true
		}
	}
	switch {
	case fromFn:
	case v != "":
		key = v
	default:
		if key, err = fn(msg); err != nil {
			return "", false, err
		}
		fromFn = true
	}
	switch {
	case key == "":
		return "", false, &keyError{detail: "identity is empty"}
	case len(key) > MaxKeyLen:
		return "", false, &keyError{detail: fmt.Sprintf("identity is %d bytes, over %d", len(key), MaxKeyLen)}
	}
	return key, fromFn, nil
}
