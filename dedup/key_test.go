package dedup_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dedup"
)

// TestStoreKeyNamespacesDoNotCollide: the namespace ends at the first "/",
// so no two (namespace, identity) pairs share a key; a plain namespace is
// written as it was.
func TestStoreKeyNamespacesDoNotCollide(t *testing.T) {
	pairs := [][2]string{{"a", "b/x"}, {"a/b", "x"}, {"a%2Fb", "x"}, {"a%", "x"}, {"a%25", "x"}, {"a", "%2Fx"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		k := dedup.StoreKey(p[0], p[1])
		if q, dup := seen[k]; dup {
			t.Errorf("StoreKey(%q, %q) = StoreKey(%q, %q) = %q", p[0], p[1], q[0], q[1], k)
		}
		seen[k] = p
	}
	if got := dedup.StoreKey("payments", "u-1"); got != "payments/u-1" {
		t.Errorf("a plain namespace: got %q, want payments/u-1 (the key it always had)", got)
	}
}

// TestJSONPointerArrayIndexIsCanonical: an array index is "0" or digits
// without a leading zero (RFC 6901); "+1", "01" and "-0" match nothing
// (strconv.Atoi took them as 1, 1 and 0).
func TestJSONPointerArrayIndexIsCanonical(t *testing.T) {
	payload := []byte(`{"a":["x","y"]}`)
	for ptr, want := range map[string]string{"/a/0": "x", "/a/1": "y", "/a/+1": "", "/a/01": "", "/a/-0": "", "/a/ 1": "", "/a/2": ""} {
		fn, err := dedup.JSONPointer(ptr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fn(message.NewMessage("u", payload))
		if want == "" && !errors.Is(err, dedup.ErrNoKey) || want != "" && (err != nil || got != want) {
			t.Errorf("%s: got %q, %v; want %q", ptr, got, err, want)
		}
	}
}

// TestJSONPointerOneValue: a payload with data after its first JSON value
// has no identity (it was the first value's), as validate refuses it.
func TestJSONPointerOneValue(t *testing.T) {
	fn, err := dedup.JSONPointer("/id")
	if err != nil {
		t.Fatal(err)
	}
	for payload, want := range map[string]string{`{"id":"a"}`: "a", " {\"id\":\"a\"}\n": "a", `{"id":"a"}{"id":"b"}`: "", `{"id":"a"} x`: "", `{"id":"a"},`: ""} {
		got, err := fn(message.NewMessage("u", []byte(payload)))
		if want == "" && !errors.Is(err, dedup.ErrNoKey) || want != "" && (err != nil || got != want) {
			t.Errorf("%q: got %q, %v; want %q", payload, got, err, want)
		}
	}
}
