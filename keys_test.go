package levee_test

import (
	"maps"
	"os"
	"strings"
	"testing"

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
	want := map[string]bool{levee.KeyDeliveryCount: true, levee.KeyRetryAfter: true, levee.KeyRedeliverAt: true}
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
