package dedup_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dedup"
)

// FuzzJSONPointer reads an identity from arbitrary payloads at arbitrary
// pointers: a malformed pointer is refused by JSONPointer, and otherwise
// the key function returns a string or number from a payload that is JSON
// or an error wrapping ErrNoKey, never a panic. Where the payload is built with
// the value at the pointer's place (member names escaped per RFC 6901, an
// array index written canonically), the function returns that value; an
// index written otherwise ("01", "+1", "-0") matches nothing.
func FuzzJSONPointer(f *testing.F) {
	f.Add("/order/id", `{"order":{"id":"o-1"}}`, "a/b", "~x", "v", uint8(0))
	f.Add("/a/0", `{"a":[7]}`, "", "~1", "1", uint8(2))
	f.Add("/~", `[`, "~01", "/", "", uint8(1))
	f.Add("", "1e999999", "0", "01", "x", uint8(3))
	f.Add("/a/+1", `{"a":[1,2]}`, "+1", "-0", "y", uint8(4))
	f.Add("/a/01", `{"a":[1,2]}`, "a", "+2", "z", uint8(2))
	f.Add("/id", `{"id":"a"}{"id":"b"}`, "id", "", "v", uint8(0))
	f.Add("/id", `{"id":"a"} x`, "id", "", "v", uint8(0))
	f.Add("/a/-0", `{"a":[1,2]}`, "\xff", "003", "z", uint8(5))
	f.Fuzz(func(t *testing.T, pointer, payload, tok1, tok2, value string, shape uint8) {
		if fn, err := dedup.JSONPointer(pointer); err == nil {
			_, kerr := fn(message.NewMessage("u", []byte(payload)))
			if kerr != nil && !errors.Is(kerr, dedup.ErrNoKey) {
				t.Fatalf("JSONPointer(%q) on %q: %v does not wrap ErrNoKey", pointer, payload, kerr)
			}
			if kerr == nil && !json.Valid([]byte(payload)) {
				t.Fatalf("JSONPointer(%q) found an identity in %q, which is not JSON", pointer, payload)
			}
		}
		// Round trip: the value placed at the pointer's place is found.
		// encoding/json writes invalid UTF-8 as U+FFFD.
		tok1, tok2, value = strings.ToValidUTF8(tok1, "\uFFFD"), strings.ToValidUTF8(tok2, "\uFFFD"), strings.ToValidUTF8(value, "\uFFFD")
		esc := strings.NewReplacer("~", "~0", "/", "~1")
		doc, ptr, match := any(value), "/"+esc.Replace(tok1), true
		switch shape % 3 {
		case 0: // {tok1: value}
			doc = map[string]any{tok1: value}
		case 1: // {tok1: {tok2: value}}
			doc = map[string]any{tok1: map[string]any{tok2: value}}
			ptr += "/" + esc.Replace(tok2)
		case 2: // {tok1: [.., value]} at index len(tok2)%4, written as tok2 when that is an index
			i := len(tok2) % 4
			arr := make([]any, i+1)
			arr[i] = value
			doc = map[string]any{tok1: arr}
			idx := strconv.Itoa(i)
			if n, err := strconv.Atoi(tok2); err == nil && n == i {
				match = tok2 == idx // "01", "+1", "-0": not canonical, matches nothing
				idx = tok2
			}
			ptr += "/" + esc.Replace(idx)
		}
		payloadRT, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		fn, err := dedup.JSONPointer(ptr)
		if err != nil {
			t.Fatalf("JSONPointer(%q): %v", ptr, err)
		}
		got, err := fn(message.NewMessage("u", payloadRT))
		switch {
		case !match && err == nil:
			t.Fatalf("pointer %q in %s: got %q, want no match", ptr, payloadRT, got)
		case match && (err != nil || got != value):
			t.Fatalf("pointer %q in %s: got %q, %v; want %q", ptr, payloadRT, got, err, value)
		}
	})
}
