//go:build integration

package redisstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// The add script stores a letter with far more hash fields than Lua's
// unpack takes at once (about 8,000 values: 4,000 metadata keys failed
// with "too many results to unpack"), whatever the caps of BoundRecord.
func TestAddScriptTakesAnyFieldCount(t *testing.T) {
	ctx := context.Background()
	prefix := brokertest.Name("levee_test")
	s, err := Open(ctx, brokertest.RedisURL(), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer func() {
		keys, _ := s.client.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			_ = s.client.Unlink(ctx, keys...).Err()
		}
	}()
	const extra = 20000
	args := encode([]any{s.kp}, dlqops.Record{ID: "many", Fingerprint: "g", Metadata: map[string]string{"k": "v"}})
	args[1] = args[1].(int) + extra // the field count the script reads
	for i := range extra {
		args = append(args, fmt.Sprintf("%sraw-%05d", metaPrefix, i), "v")
	}
	added, err := addScript.Run(ctx, s.client, nil, args...).Int()
	if err != nil || added != 1 {
		t.Fatalf("add script: got %d, %v want 1, nil", added, err)
	}
	n, err := s.client.HLen(ctx, s.recordKey("many")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < extra+1 {
		t.Errorf("stored %d fields want more than %d", n, extra)
	}
}
