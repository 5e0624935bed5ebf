package idkey

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	long := strings.Repeat("u", 1<<20)
	digestOfLong := Key(long)
	cases := []struct {
		name, uuid string
		raw        bool
	}{
		{"empty", "", true},
		{"uuid", "0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f", true},
		{"at the bound", strings.Repeat("a", MaxRaw), true},
		{"over the bound", strings.Repeat("a", MaxRaw+1), false},
		{"a megabyte", long, false},
		{"starts with DEL", "\x7fx", false},
		{"looks like a digest key", digestOfLong, false},
	}
	seen := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := Key(c.uuid)
			if got := k == c.uuid; got != c.raw {
				t.Errorf("kept as it is: got %v want %v", got, c.raw)
			}
			if !c.raw && len(k) != len(digestPrefix)+32 {
				t.Errorf("key length: got %d want %d", len(k), len(digestPrefix)+32)
			}
			if Key(c.uuid) != k {
				t.Errorf("two calls gave two keys")
			}
			if other, ok := seen[k]; ok {
				t.Errorf("key collides with case %q", other)
			}
			seen[k] = c.name
		})
	}
}

func TestKeyOfShortUUIDAllocatesNothing(t *testing.T) {
	uuid := "0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f"
	if n := testing.AllocsPerRun(100, func() { _ = Key(uuid) }); n != 0 {
		t.Errorf("allocations: got %v want 0", n)
	}
}

// TestDocsStateMaxRaw keeps the bound the docs state equal to MaxRaw.
func TestDocsStateMaxRaw(t *testing.T) {
	for _, c := range []struct{ file, text string }{
		{"../../docs/DLQ.md", "a UUID longer than %d bytes is kept as its SHA-256"},
		{"../../docs/PRIORITY.md", "a UUID over %d bytes by its SHA-256"},
		{"../../docs/ARCHITECTURE.md", "the UUID up to %d bytes, else its SHA-256"},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		doc := strings.Join(strings.Fields(string(b)), " ")
		if want := fmt.Sprintf(c.text, MaxRaw); !strings.Contains(doc, want) {
			t.Errorf("%s does not say %q", c.file, want)
		}
	}
}
