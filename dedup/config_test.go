package dedup_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/config"
)

// TestConfigValidateNamesEveryKey: Validate reports every problem, each
// as a FieldError naming its key, and each wraps ErrInvalidConfig.
func TestConfigValidateNamesEveryKey(t *testing.T) {
	c := dedup.Config{Store: "disk", Key: &dedup.KeyConfig{JSONPointer: "a"}, Lease: -time.Second, MaxKeys: -1}
	err := c.Validate()
	list, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %v, want a list of problems", err)
	}
	var keys []string
	for _, e := range list.Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) || !errors.Is(e, dedup.ErrInvalidConfig) {
			t.Errorf("got %v, want a FieldError wrapping ErrInvalidConfig", e)
			continue
		}
		keys = append(keys, fe.Key)
	}
	if got, want := strings.Join(keys, " "), "store max_keys key.json_pointer lease"; got != want {
		t.Errorf("got keys %q, want %q", got, want)
	}
}
