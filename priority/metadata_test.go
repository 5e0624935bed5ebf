package priority_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/priority"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"0", 0, true},
		{"5", 5, true},
		{"9", 9, true},
		{"+4", 4, true},
		{" 7\t", 7, true},
		{"007", 7, true},
		{"10", 9, true},
		{"-1", 0, true},
		{"-99999999999999999999999999999999", 0, true},
		{"99999999999999999999999999999999999999999999999999", 9, true},
		{"", 0, false},
		{" ", 0, false},
		{"-", 0, false},
		{"high", 0, false},
		{"4.5", 0, false},
		{"0x5", 0, false},
		{"1e3", 0, false},
		{"٣", 0, false}, // a non-ASCII digit
		{"5 5", 0, false},
		{"\x00", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := priority.Parse(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Parse(%q): got (%d, %v), want (%d, %v)", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		p    int
		want string
	}{{0, "0"}, {6, "6"}, {9, "9"}, {42, "9"}, {-3, "0"}}
	for _, tt := range tests {
		msg := message.NewMessage("id", nil)
		priority.Set(msg, tt.p)
		if got := msg.Metadata.Get(levee.KeyPriority); got != tt.want {
			t.Errorf("Set(%d): got %q, want %q", tt.p, got, tt.want)
		}
	}
	bare := &message.Message{}
	priority.Set(bare, 3)
	if got := bare.Metadata.Get(levee.KeyPriority); got != "3" {
		t.Errorf("Set on nil metadata: got %q, want 3", got)
	}
	priority.Set(nil, 3) // must not panic
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"5", "-1", "99999999999999999999", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := priority.Parse(s)
		if p < priority.MinPriority || p > priority.MaxPriority {
			t.Fatalf("Parse(%q) = %d outside the range", s, p)
		}
		if !ok && p != 0 {
			t.Fatalf("Parse(%q) = (%d, false), want 0", s, p)
		}
	})
}
