package dlq_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	lconfig "github.com/levee-dev/levee/internal/config"
)

func TestStoreConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       dlq.StoreConfig
		wantErr    string
	}{
		{name: "empty is memory", yaml: "store: {}\n", want: dlq.StoreConfig{}},
		{name: "postgres", yaml: "store: {kind: postgres, url: \"postgres://x@h/db\", schema: s, retention: {max_age: 720h, max_count: 10}}\n",
			want: dlq.StoreConfig{Kind: "postgres", URL: "postgres://x@h/db", Schema: "s",
				Retention: dlq.RetentionConfig{MaxAge: 720 * time.Hour, MaxCount: 10}}},
		{name: "postgres without url", yaml: "store: {kind: postgres}\n", wantErr: "levee.yaml:1: store.url"},
		{name: "memory with url", yaml: "store: {url: x}\n", wantErr: "store.url"},
		{name: "unknown kind", yaml: "store:\n  kind: redis\n", wantErr: "levee.yaml:2: store.kind"},
		{name: "negative count", yaml: "store: {retention: {max_count: -1}}\n", wantErr: "store.retention.max_count"},
		{name: "unknown key", yaml: "store: {colour: red}\n", wantErr: "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := lconfig.Parse("levee.yaml", []byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Store dlq.StoreConfig `yaml:"store"`
			}
			err = doc.Decode(&got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Store != tt.want {
				t.Errorf("got %+v want %+v", got.Store, tt.want)
			}
		})
	}
	if err := (dlq.StoreConfig{Kind: "x"}).Validate(); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Errorf("Validate: got %v want ErrInvalidConfig", err)
	}
	if got := (dlq.RetentionConfig{MaxAge: time.Hour, MaxCount: 3}).Policy(); got != (dlq.Retention{MaxAge: time.Hour, MaxCount: 3}) {
		t.Errorf("Policy: %+v", got)
	}
}
