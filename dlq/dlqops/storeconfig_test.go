package dlqops_test

import (
	"cmp"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
)

func TestStoreConfig(t *testing.T) {
	tests := []struct {
		name, yaml  string
		want        dlqops.StoreConfig
		wantTimeout time.Duration // 0: DefaultStoreTimeout
		wantErr     string
	}{
		{name: "empty is memory", yaml: "store: {}\n", want: dlqops.StoreConfig{}},
		{name: "postgres", yaml: "store: {kind: postgres, url: \"postgres://x@h/db\", schema: s, retention: {max_age: 720h, max_count: 10}}\n",
			want: dlqops.StoreConfig{Kind: "postgres", URL: "postgres://x@h/db", Schema: "s",
				Retention: dlqops.RetentionConfig{MaxAge: 720 * time.Hour, MaxCount: 10}}},
		{name: "postgres without url", yaml: "store: {kind: postgres}\n", wantErr: "levee.yaml:1: store.url"},
		{name: "memory with url", yaml: "store: {url: x}\n", wantErr: "store.url"},
		{name: "unknown kind", yaml: "store:\n  kind: mongo\n", wantErr: "levee.yaml:2: store.kind"},
		{name: "redis", yaml: "store: {kind: redis, url: \"redis://127.0.0.1:6379/0\", prefix: \"app:{dlq1}\", retention: {max_count: 5}}\n",
			want: dlqops.StoreConfig{Kind: "redis", URL: "redis://127.0.0.1:6379/0", Prefix: "app:{dlq1}",
				Retention: dlqops.RetentionConfig{MaxCount: 5}}},
		{name: "redis tls", yaml: "store: {kind: redis, url: \"rediss://u:p@h:6380/2\"}\n",
			want: dlqops.StoreConfig{Kind: "redis", URL: "rediss://u:p@h:6380/2"}},
		{name: "redis socket", yaml: "store: {kind: redis, url: \"unix:///run/redis.sock\"}\n",
			want: dlqops.StoreConfig{Kind: "redis", URL: "unix:///run/redis.sock"}},
		{name: "redis without url", yaml: "store:\n  kind: redis\n", wantErr: "store.url: levee/dlqops: invalid configuration: a redis store needs a url"},
		{name: "redis bad scheme", yaml: "store:\n  kind: redis\n  url: \"http://h:6379\"\n", wantErr: "levee.yaml:3: store.url: levee/dlqops: invalid configuration: url scheme \"http\""},
		{name: "redis no host", yaml: "store: {kind: redis, url: \"redis:///0\"}\n", wantErr: "has no host"},
		{name: "redis socket without path", yaml: "store: {kind: redis, url: \"unix://\"}\n", wantErr: "no socket path"},
		{name: "redis bad url", yaml: "store: {kind: redis, url: \"redis://h:%zz\"}\n", wantErr: "store.url"},
		{name: "redis with schema", yaml: "store: {kind: redis, url: \"redis://h:6379\", schema: s}\n", wantErr: "store.schema: levee/dlqops: invalid configuration: schema is for postgres"},
		{name: "redis prefix space", yaml: "store:\n  kind: redis\n  url: \"redis://h:6379\"\n  prefix: \"my app\"\n", wantErr: "levee.yaml:4: store.prefix"},
		{name: "redis prefix reserved", yaml: "store: {kind: redis, url: \"redis://h:6379\", prefix: \"app:dlq\"}\n", wantErr: "reserved segment \"dlq\""},
		{name: "redis prefix empty segment", yaml: "store: {kind: redis, url: \"redis://h:6379\", prefix: \"app::x\"}\n", wantErr: "empty segment"},
		{name: "redis prefix too long", yaml: "store: {kind: redis, url: \"redis://h:6379\", prefix: \"" + strings.Repeat("p", 65) + "\"}\n", wantErr: "longer than 64"},
		{name: "postgres with prefix", yaml: "store: {kind: postgres, url: \"postgres://h/db\", prefix: x}\n", wantErr: "store.prefix: levee/dlqops: invalid configuration: prefix is for redis; a postgres store takes none"},
		{name: "memory with prefix", yaml: "store:\n  prefix: x\n", wantErr: "levee.yaml:2: store.prefix"},
		{name: "negative count", yaml: "store: {retention: {max_count: -1}}\n", wantErr: "store.retention.max_count"},
		{name: "unknown key", yaml: "store: {colour: red}\n", wantErr: "colour"},
		{name: "timeout", yaml: "store: {timeout: 750ms}\n", wantTimeout: 750 * time.Millisecond},
		{name: "timeout zero", yaml: "store:\n  timeout: 0s\n", wantErr: "levee.yaml:2: store.timeout: levee/dlqops: invalid configuration: 0s: must be positive"},
		{name: "timeout negative", yaml: "store: {kind: postgres, url: \"postgres://h/db\", timeout: -1s}\n", wantErr: "levee.yaml:1: store.timeout"},
		{name: "replay topics", yaml: "store: {kind: postgres, url: \"postgres://h/db\", replay_topics: [orders, payments]}\n",
			want: dlqops.StoreConfig{Kind: "postgres", URL: "postgres://h/db", ReplayTopics: []string{"orders", "payments"}}},
		{name: "blank replay topic", yaml: "store:\n  replay_topics: [orders, \" \"]\n", wantErr: "levee.yaml:2: store.replay_topics: levee/dlqops: invalid configuration: entry 2: replay topic \" \" is blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := lconfig.Parse("levee.yaml", []byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Store dlqops.StoreConfig `yaml:"store"`
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
			wantTimeout := cmp.Or(tt.wantTimeout, dlqops.DefaultStoreTimeout)
			if got := got.Store.StoreTimeout(); got != wantTimeout {
				t.Errorf("StoreTimeout: got %s want %s", got, wantTimeout)
			}
			got.Store.Timeout = nil
			if !reflect.DeepEqual(got.Store, tt.want) {
				t.Errorf("got %+v want %+v", got.Store, tt.want)
			}
		})
	}
	if err := (dlqops.StoreConfig{Kind: "x"}).Validate(); !errors.Is(err, dlqops.ErrInvalidConfig) {
		t.Errorf("Validate: got %v want ErrInvalidConfig", err)
	}
	neg := -time.Second
	if err := (dlqops.StoreConfig{Timeout: &neg}).Validate(); !errors.Is(err, dlqops.ErrInvalidConfig) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Validate negative timeout: got %v want ErrInvalidConfig naming timeout", err)
	}
	if got := (dlqops.RetentionConfig{MaxAge: time.Hour, MaxCount: 3}).Policy(); got != (dlqops.Retention{MaxAge: time.Hour, MaxCount: 3}) {
		t.Errorf("Policy: %+v", got)
	}
}
