package levee_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee"
)

func TestStripControl(t *testing.T) {
	md := map[string]string{
		levee.KeyDeliveryCount: "99", levee.KeyRetryAfter: "1h", levee.KeyRedeliverAt: "1", "app": "v",
	}
	if !levee.HasControl(md) {
		t.Fatal("HasControl: got false for a map with control keys")
	}
	levee.StripControl(md)
	if want := map[string]string{"app": "v"}; !maps.Equal(md, want) {
		t.Fatalf("got %v, want %v", md, want)
	}
	if levee.HasControl(md) || levee.HasControl(nil) {
		t.Fatal("HasControl: got true without control keys")
	}
	levee.StripControl(nil) // no panic on a nil map
}

// TestReadmeNamesTheControlKeys: README's metadata table marks exactly the
// control keys as "control:" in its "who may set it" column.
func TestReadmeNamesTheControlKeys(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marked := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[3]), "control:") {
			continue
		}
		marked[strings.Trim(strings.TrimSpace(cells[1]), "`")] = true
	}
	want := map[string]bool{levee.KeyDeliveryCount: true, levee.KeyRetryAfter: true, levee.KeyRedeliverAt: true, levee.KeyUndecodable: true}
	if !maps.Equal(marked, want) {
		t.Fatalf("README marks %v as control keys, want %v", marked, want)
	}
}

func TestDeferral(t *testing.T) {
	cause := os.ErrDeadlineExceeded
	err := levee.Defer(-1, cause)
	d, ok := levee.AsDeferral(err)
	if !ok || d.RetryAfter() != 0 {
		t.Fatalf("Defer(-1): got %v %v, want a deferral with no delay", d, ok)
	}
	if !strings.Contains(err.Error(), cause.Error()) {
		t.Errorf("Error() = %q, want it to name the cause", err.Error())
	}
	s := levee.DeferralSentinel("levee/x: closed")
	if !levee.IsDeferral(s) || levee.IsDeferral(os.ErrClosed) || levee.IsDeferral(nil) {
		t.Fatal("IsDeferral: wrong answer")
	}
}

// TestAsDeferralChain: AsDeferral follows wrapped and joined errors, skips
// a Deferral that opts out, and allocates nothing.
func TestAsDeferralChain(t *testing.T) {
	d := levee.Defer(time.Second, nil)
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"wrapped", fmt.Errorf("ctx: %w", d), true},
		{"joined", errors.Join(os.ErrClosed, fmt.Errorf("x: %w", d)), true},
		{"opted out, then a deferral", optOut{d}, true},
		{"opted out alone", optOut{os.ErrClosed}, false},
		{"plain", os.ErrClosed, false},
	} {
		if _, got := levee.AsDeferral(tt.err); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	err := fmt.Errorf("ctx: %w", os.ErrClosed)
	if n := testing.AllocsPerRun(100, func() { levee.AsDeferral(err) }); n != 0 {
		t.Errorf("AsDeferral allocates %v times on a plain error, want 0", n)
	}
}

// optOut is a Deferral that says it is not one.
type optOut struct{ err error }

func (o optOut) Error() string             { return "opt out" }
func (o optOut) RetryAfter() time.Duration { return 0 }
func (o optOut) Deferred() bool            { return false }
func (o optOut) Unwrap() error             { return o.err }
