package batch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/config"
)

func decodeSection(t *testing.T, yaml string) (batch.Config, error) {
	t.Helper()
	doc, err := config.Parse("levee.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var v struct {
		Batch batch.Config `yaml:"batch"`
	}
	err = doc.Decode(&v)
	return v.Batch, err
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErr  string // substring of the error; "" for none
		wantSize int
		wantWait time.Duration
	}{
		{name: "defaults", yaml: "batch: {}\n", wantSize: 100, wantWait: 50 * time.Millisecond},
		{name: "all keys", yaml: "batch:\n  max_size: 500\n  max_bytes: 1048576\n  max_wait: 20ms\n  max_in_flight: 4\n  max_hold: 2s\n", wantSize: 500, wantWait: 20 * time.Millisecond},
		{name: "zero size", yaml: "batch:\n  max_wait: 20ms\n  max_size: 0\n", wantErr: "levee.yaml:3: batch.max_size: must be positive, got 0"},
		{name: "negative bytes", yaml: "batch:\n  max_bytes: -1\n", wantErr: "levee.yaml:2: batch.max_bytes: must be positive"},
		{name: "zero wait", yaml: "batch:\n  max_wait: 0s\n", wantErr: "batch.max_wait: must be positive"},
		{name: "zero in flight", yaml: "batch:\n  max_in_flight: 0\n", wantErr: "batch.max_in_flight: must be positive"},
		{name: "hold below wait", yaml: "batch:\n  max_wait: 1s\n  max_hold: 500ms\n", wantErr: "levee.yaml:3: batch.max_hold: must be longer than max_wait"},
		{name: "unknown key", yaml: "batch:\n  size: 3\n", wantErr: `unknown key "size"`},
		{name: "bytes with unit", yaml: "batch:\n  max_bytes: 1MiB\n", wantErr: "is not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decodeSection(t, tt.yaml)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b, err := batch.New(func(context.Context, []*message.Message) error { return nil }, c.Options()...)
			if err != nil {
				t.Fatalf("New from config: %v", err)
			}
			_ = b.Close()
			if c.MaxSize != nil && *c.MaxSize != tt.wantSize {
				t.Errorf("got max_size %d, want %d", *c.MaxSize, tt.wantSize)
			}
			if c.MaxWait != nil && *c.MaxWait != tt.wantWait {
				t.Errorf("got max_wait %s, want %s", *c.MaxWait, tt.wantWait)
			}
		})
	}
}

func TestConfigAndNewAgree(t *testing.T) {
	zero, neg := 0, -3
	for _, c := range []batch.Config{{MaxSize: &zero}, {MaxBytes: &neg}, {MaxInFlight: &zero}} {
		verr := c.Validate()
		_, nerr := batch.New(func(context.Context, []*message.Message) error { return nil }, c.Options()...)
		if verr == nil || !errors.Is(nerr, batch.ErrInvalidConfig) {
			t.Errorf("%+v: Validate %v, New %v; want both to fail", c, verr, nerr)
		}
	}
}

// TestValidateReportsEveryProblem: max_size: 0 does not hide max_in_flight: -1.
func TestValidateReportsEveryProblem(t *testing.T) {
	zero, neg := 0, -1
	err := batch.Config{MaxSize: &zero, MaxInFlight: &neg}.Validate()
	list, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %v, want a list of problems", err)
	}
	var keys []string
	for _, e := range list.Unwrap() {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			keys = append(keys, fe.Key)
		}
	}
	if got, want := strings.Join(keys, " "), "max_size max_in_flight"; got != want {
		t.Errorf("got keys %q, want %q (%v)", got, want, err)
	}
}
