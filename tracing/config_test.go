package tracing_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/tracing"
)

func TestConfigDecodeAndValidate(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantKey string // "" means valid
	}{
		{"empty", "{}", ""},
		{"full", "system: kafka\nconsumer_group: orders\npropagators: [tracecontext, baggage]\n", ""},
		{"trace only", "propagators: [TraceContext]\n", ""},
		{"unknown propagator", "propagators: [b3]\n", "propagators"},
		{"repeated propagator", "propagators: [baggage, baggage]\n", "propagators"},
		{"padded system", "system: ' kafka'\n", "system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := config.Parse("levee.yaml", []byte(tt.yaml), nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var c tracing.Config
			err = doc.Decode(&c)
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("decode: got %v, want nil", err)
				}
				if _, err := tracing.New(c.Options()...); err != nil {
					t.Errorf("New(Options()): %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Path != tt.wantKey || ce.Line != 1 {
				t.Fatalf("decode: got %v, want an error at line 1, key %q", err, tt.wantKey)
			}
			if !errors.Is(err, tracing.ErrInvalidConfig) {
				t.Errorf("got %v, want it to wrap ErrInvalidConfig", err)
			}
			if _, err := tracing.New(c.Options()...); !errors.Is(err, tracing.ErrInvalidConfig) {
				t.Errorf("New(Options()): got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigOptionsApply(t *testing.T) {
	r := newRecorded(t)
	c := tracing.Config{System: "nats", ConsumerGroup: "g", Propagators: []string{"baggage"}}
	tr := r.tracer(t, c.Options()...)
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	if _, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
		t.Fatal(err)
	}
	s := r.one(t, "process")
	if s.Parent().IsValid() {
		t.Errorf("parent %v, want none with propagators [baggage]", s.Parent())
	}
	wantAttr(t, s, attrSystem("nats"))
}

func TestConfigOptionsKeepAdapterSystem(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t, append([]tracing.Option{tracing.WithSystem("kafka")}, tracing.Config{}.Options()...)...)
	if _, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, message.NewMessage("u", nil)); err != nil {
		t.Fatal(err)
	}
	wantAttr(t, r.one(t, "process"), attrSystem("kafka"))
}
