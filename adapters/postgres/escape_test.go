package postgres

import (
	"encoding/json"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestEscapeMetadata checks the metadata column's encoding: metadata the
// column keeps is stored as it is (the same map), anything else round-trips
// byte for byte, and the stored JSON never holds \u0000 or a replaced
// invalid byte.
func TestEscapeMetadata(t *testing.T) {
	tests := []struct {
		name    string
		md      message.Metadata
		escaped bool
	}{
		{"nil", nil, false},
		{"plain", message.Metadata{"k": "v", "levee_redeliver_at": "12", "quote": `"\u0000\\`}, false},
		{"nul value", message.Metadata{"note": "a\x00b", "k": "v"}, true},
		{"nul key", message.Metadata{"a\x00": "v"}, true},
		{"invalid utf-8", message.Metadata{"bin": "\xff\xfe", "k\xc3": "x"}, true},
		{"empty value", message.Metadata{"nul": "\x00", "e": ""}, true},
		{"the escape key itself", message.Metadata{escapedKey: "producer's", "k": "v"}, true},
		{"escape key, decodable", message.Metadata{escapedKey: "YQ==:Yg=="}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := escapeMetadata(tt.md)
			if _, got := stored[escapedKey]; got != tt.escaped {
				t.Fatalf("got escaped %v, want %v (stored %q)", got, tt.escaped, stored)
			}
			raw, err := json.Marshal(stored)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range stored {
				if needsEscape(k) || needsEscape(v) {
					t.Fatalf("stored entry %q: %q is not safe for the column", k, v)
				}
			}
			var back message.Metadata
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			unescapeMetadata(back)
			if len(back) != len(tt.md) {
				t.Fatalf("got %q, want %q", back, tt.md)
			}
			for k, v := range tt.md {
				if got, ok := back[k]; !ok || got != v {
					t.Fatalf("key %q: got %q (present %v), want %q", k, got, ok, v)
				}
			}
			if !tt.escaped && len(tt.md) > 0 {
				stored["probe"] = "x"
				if tt.md["probe"] != "x" {
					t.Fatal("metadata that needs no escaping was copied")
				}
			}
		})
	}
}

// TestUnescapeMetadataGarbage checks that an escape key Levee did not
// write is left as it is (the message is delivered with it), never a
// panic.
func TestUnescapeMetadataGarbage(t *testing.T) {
	for _, v := range []string{"nocolon", "!!:YQ==", "YQ==:!!", "YQ==:Yg==,", "YQ=="} {
		md := message.Metadata{escapedKey: v, "k": "v"}
		unescapeMetadata(md)
		if md[escapedKey] != v || md["k"] != "v" || len(md) != 2 {
			t.Fatalf("%q: got %q, want it left as it is", v, md)
		}
	}
}
