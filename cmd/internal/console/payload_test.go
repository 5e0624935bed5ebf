package console

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestLargePayloadPages: a letter page shows at most the first
// maxShownPayload bytes of a payload, and says so, instead of a page
// several times the payload's size (a 10 MB binary payload was a 60 MB
// hex dump); the edit page of a payload a form cannot send back (maxForm)
// says so and has no form, instead of an edit that can only be refused.
func TestLargePayloadPages(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		id      string
		payload []byte
		kind    string
		shown   int
	}{
		{"big-binary", bytes.Repeat([]byte{0, 0xff, '<', 'a'}, 10<<20/4), "hex", maxShownPayload / 4},
		{"big-json", []byte(`[` + strings.Repeat(`{"a":"ü"},`, 10<<20/11) + `1]`), "text", maxShownPayload},
		{"big-text", bytes.Repeat([]byte("hellö\n"), 5<<20/7), "text", maxShownPayload},
	} {
		l := dlqtest.Letter(tc.id, "g9", "orders", "ship", 20*time.Minute)
		l.Payload = tc.payload
		if _, err := f.store.Add(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		page := f.do("GET", "/letter?id="+tc.id, "alice", nil)
		body := page.Body.String()
		var shown int
		head := fmt.Sprintf("(%s, %d bytes; the first ", tc.kind, len(tc.payload))
		if i := strings.Index(body, head); i >= 0 {
			_, _ = fmt.Sscanf(body[i+len(head):], "%d shown)", &shown)
		}
		if page.Code != 200 || page.Body.Len() > 5*maxShownPayload || shown > tc.shown || shown <= tc.shown-utf8.UTFMax {
			t.Errorf("%s: letter page %d, %d bytes for a %d-byte payload; want about %d bytes shown as %s, and said so (it says %d)",
				tc.id, page.Code, page.Body.Len(), len(tc.payload), tc.shown, tc.kind, shown)
		}
		edit := f.do("GET", "/edit?id="+tc.id, "alice", nil).Body.String()
		if strings.Contains(edit, "<textarea") || !strings.Contains(edit, fmt.Sprintf("within the %d MiB a form may hold", maxForm>>20)) {
			t.Errorf("%s: the edit page offers a form a browser cannot send back (%d bytes)", tc.id, len(tc.payload))
		}
	}
	small := f.do("GET", "/letter?id=La", "alice", nil).Body.String()
	if strings.Contains(small, " shown)") {
		t.Errorf("a small payload's page says it was cut")
	}
	// Sent as multipart with each newline as CRLF: 3 MiB of short lines
	// would be over 4 MiB, 3 MiB of long ones fit.
	for name, tc := range map[string]struct {
		line     string
		editable bool
	}{"short lines": {"ab\n", false}, "long lines": {strings.Repeat("a", 1023) + "\n", true}} {
		l := dlqtest.Letter("lines-"+strings.ReplaceAll(name, " ", "-"), "g9", "orders", "ship", 21*time.Minute)
		l.Payload = bytes.Repeat([]byte(tc.line), 3<<20/len(tc.line))
		if _, err := f.store.Add(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		edit := f.do("GET", "/edit?id="+l.ID, "alice", nil).Body.String()
		if got := strings.Contains(edit, "<textarea"); got != tc.editable {
			t.Errorf("%s: edit form offered %v, want %v", name, got, tc.editable)
		}
	}
}
