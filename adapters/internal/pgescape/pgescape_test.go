package pgescape

import (
	"encoding/json"
	"testing"
)

// TestEscapeMetadata checks the metadata column's encoding: metadata the
// column keeps is stored as it is (the same map), anything else round-trips
// byte for byte, and the stored JSON never holds \u0000 or a replaced
// invalid byte.
func TestEscapeMetadata(t *testing.T) {
	tests := []struct {
		name    string
		md      map[string]string
		escaped bool
	}{
		{"nil", nil, false},
		{"plain", map[string]string{"k": "v", "levee_redeliver_at": "12", "quote": `"\u0000\\`}, false},
		{"nul value", map[string]string{"note": "a\x00b", "k": "v"}, true},
		{"nul key", map[string]string{"a\x00": "v"}, true},
		{"invalid utf-8", map[string]string{"bin": "\xff\xfe", "k\xc3": "x"}, true},
		{"empty value", map[string]string{"nul": "\x00", "e": ""}, true},
		{"the escape key itself", map[string]string{Key: "producer's", "k": "v"}, true},
		{"escape key, decodable", map[string]string{Key: "YQ==:Yg=="}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := Escape(tt.md)
			if _, got := stored[Key]; got != tt.escaped {
				t.Fatalf("got escaped %v, want %v (stored %q)", got, tt.escaped, stored)
			}
			raw, err := json.Marshal(stored)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range stored {
				if NeedsEscape(k) || NeedsEscape(v) {
					t.Fatalf("stored entry %q: %q is not safe for the column", k, v)
				}
			}
			var back map[string]string
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			Unescape(back)
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

// TestUnEscapeGarbage checks that an escape key Levee did not
// write is left as it is (the message is delivered with it), never a
// panic.
func TestUnEscapeGarbage(t *testing.T) {
	for _, v := range []string{"nocolon", "!!:YQ==", "YQ==:!!", "YQ==:Yg==,", "YQ=="} {
		md := map[string]string{Key: v, "k": "v"}
		Unescape(md)
		if md[Key] != v || md["k"] != "v" || len(md) != 2 {
			t.Fatalf("%q: got %q, want it left as it is", v, md)
		}
	}
}
