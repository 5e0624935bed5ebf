package redisdedup_test

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
)

// A deduplicator shared by every replica: claims and done marks in Redis.
// New does not dial; the first claim does.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, err := redisdedup.New(client, "orders:dedup:")
	if err != nil {
		panic(err)
	}
	d, err := dedup.New(dedup.WithStore(store))
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Lease(), d.Window())

	_, err = redisdedup.New(nil, "")
	fmt.Println(errors.Is(err, levee.ErrInvalidConfig))
	// Output:
	// 30s 24h0m0s
	// true
}
