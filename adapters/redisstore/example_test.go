package redisstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Options and the URL are checked before anything is dialled; the YAML
// `store:` section is checked by dlqops.StoreConfig.Validate with the same
// rules.
func ExampleOpen_validation() {
	ctx := context.Background()
	_, err := redisstore.Open(ctx, "redis://127.0.0.1:6379/0", redisstore.WithPrefix("my app"))
	fmt.Println(errors.Is(err, redisstore.ErrInvalidConfig))
	fmt.Println(err)

	_, err = redisstore.Open(ctx, "http://127.0.0.1:6379/0")
	fmt.Println(err)

	err = dlqops.StoreConfig{Kind: dlqops.StoreKindRedis, URL: "redis://127.0.0.1:6379/0", Prefix: "app:dlq"}.Validate()
	fmt.Println(err)
	// Output:
	// true
	// levee/redisstore: invalid configuration: prefix "my app": character ' ' not allowed (letters, digits, _ . - { } and : between segments)
	// levee/redisstore: invalid configuration: store url: redis: invalid URL scheme: http
	// prefix: levee/dlqops: invalid configuration: prefix "app:dlq" uses the reserved segment "dlq"
}
