package trunc

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestLog(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f", "0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f"},
		{"café order", "café order"},
		{"a\nlevel=ERROR", `"a\nlevel=ERROR"`},
		{"a\rb", `"a\rb"`},
		{"esc \x1b[31m", `"esc \x1b[31m"`},
		{"del \x7f", `"del \x7f"`},
		{"next line \u0085", `"next line \u0085"`},
		{"bad \xff", `"bad ` + "\uFFFD" + `"`},
	} {
		if got := Log(c.in); got != c.want {
			t.Errorf("Log(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	long := Log(strings.Repeat("x", 1<<20))
	if len(long) > MaxLogValue+2 || !strings.HasSuffix(long, Ellipsis+`"`) {
		t.Errorf("a megabyte: got %d bytes ending %q, want at most %d, cut and quoted", len(long), long[len(long)-8:], MaxLogValue+2)
	}
}

func TestLogError(t *testing.T) {
	plain := errors.New("declined")
	if got := LogError(plain); got != plain {
		t.Errorf("a plain error was replaced: %v", got)
	}
	bad := errors.New("order a\nforged")
	got := LogError(bad)
	if got.Error() != `"order a\nforged"` || !errors.Is(got, bad) {
		t.Errorf("LogError = %v (is the error: %v), want the quoted message, unwrapping to it", got, errors.Is(got, bad))
	}
	if LogError(nil) != nil {
		t.Error("LogError(nil) is not nil")
	}
}

// TestDocsStateMaxLogValue keeps docs/OPERATIONS.md's bound equal to
// MaxLogValue.
func TestDocsStateMaxLogValue(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("valid UTF-8 of at most %d bytes without control characters", MaxLogValue)
	if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, want) {
		t.Errorf("docs/OPERATIONS.md does not say %q", want)
	}
}

func TestLogOfAUUIDAllocatesNothing(t *testing.T) {
	uuid := "0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f"
	if n := testing.AllocsPerRun(100, func() { _ = Log(uuid) }); n != 0 {
		t.Errorf("allocations: got %v want 0", n)
	}
}
