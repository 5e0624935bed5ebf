package pgescape

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// FuzzEscape: any metadata (NUL bytes, invalid UTF-8, the escape key
// itself among the keys) goes through Escape, encoding/json and Unescape
// byte for byte, and the stored JSON holds no \u0000 and no replaced byte.
// Unescape of a stored value Levee did not write (garbage under Key) never
// panics, and leaves the metadata as it is when it cannot decode it.
func FuzzEscape(f *testing.F) {
	f.Add("k", "v", Key, "x", "garbage")
	f.Add("a\x00", "\xff", "b", "c\x00d", "YQ==:Yg==")
	f.Add("", "", Key, "", "YQ==:Yg==,")
	f.Add("\xc3", "\xa9", "é", "ok", "!!:YQ==")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, raw string) {
		md := map[string]string{k1: v1, k2: v2, "plain": "v"}
		stored := Escape(md)
		data, err := json.Marshal(stored)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `\u0000`) || strings.Contains(string(data), "\uFFFD") && !strings.Contains(k1+v1+k2+v2, "\uFFFD") {
			t.Fatalf("stored JSON %s keeps a NUL or a replaced byte", data)
		}
		back := map[string]string{}
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		Unescape(back)
		if !maps.Equal(back, md) {
			t.Fatalf("round trip: got %q, want %q", back, md)
		}

		garbage := map[string]string{Key: raw, "k": "v"}
		entries, derr := Decode(raw)
		Unescape(garbage)
		if derr != nil {
			if garbage[Key] != raw || len(garbage) != 2 {
				t.Fatalf("undecodable %q: got %q, want it left as it is", raw, garbage)
			}
			return
		}
		for k, v := range entries {
			if garbage[k] != v {
				t.Fatalf("%q: entry %q = %q, want %q", raw, k, garbage[k], v)
			}
		}
	})
}
