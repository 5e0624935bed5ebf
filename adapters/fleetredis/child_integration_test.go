//go:build integration

package fleetredis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/ratelimit"
)

// A child replica is this test binary re-executed with the environment
// below; it prints what it observed on stdout, one event per line, with
// times in ms since START (a wall-clock instant every child shares).
const childEnv = "LEVEE_FLEET_CHILD"

type childEnvVars struct {
	mode, url, prefix, key, dir string
	rate, local                 float64
	start                       time.Time
	dur                         time.Duration
	onErr                       ratelimit.OnStoreError
	workers                     int
	storeTimeout                time.Duration
}

func readChildEnv() (childEnvVars, error) {
	c := childEnvVars{mode: os.Getenv(childEnv), url: os.Getenv("FLEET_URL"), prefix: os.Getenv("FLEET_PREFIX"),
		key: os.Getenv("FLEET_KEY"), dir: os.Getenv("FLEET_DIR")}
	var err error
	num := func(k string) float64 {
		v, e := strconv.ParseFloat(os.Getenv(k), 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %w", k, e)
		}
		return v
	}
	c.rate, c.local = num("FLEET_RATE"), num("FLEET_LOCAL")
	c.start = time.Unix(0, int64(num("FLEET_START")))
	c.dur = time.Duration(num("FLEET_DUR_MS")) * time.Millisecond
	c.workers = int(num("FLEET_WORKERS"))
	c.storeTimeout = time.Duration(num("FLEET_STORE_TIMEOUT_MS")) * time.Millisecond
	if err != nil {
		return c, err
	}
	c.onErr, err = ratelimit.ParseOnStoreError(os.Getenv("FLEET_ON_ERR"))
	return c, err
}

func runChild() int {
	c, err := readChildEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	// Dial, not Open: as a service replica does (service.New), a child
	// that starts while the store is down runs on its on_store_error mode.
	// On a loaded machine a child can take longer to start than the
	// outage tests' timeline gives it before they stop or kill the store.
	store, err := fleetredis.Dial(c.url, c.prefix, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer store.Close()
	switch c.mode {
	case "rate":
		err = childRate(c, store)
	case "breaker":
		err = childBreaker(c, store)
	default:
		err = errors.New("unknown mode " + c.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	return 0
}

func ms(start time.Time) int64 { return time.Since(start).Milliseconds() }

// childRate saturates a fleet limit with c.workers workers and prints
// "n <ms> <admitted so far> <longest wait in the last 100ms, µs>
// <live members> <tokens held>" every
// 100ms.
func childRate(c childEnvVars, store *fleetredis.Store) error {
	opts := []ratelimit.Option{ratelimit.WithFleet(ratelimit.Fleet{Store: store, Key: c.key, Rate: c.rate,
		OnStoreError: c.onErr, StoreTimeout: c.storeTimeout})}
	if c.local > 0 {
		opts = append(opts, ratelimit.WithRate(c.local), ratelimit.WithBurst(max(1, int(c.local/20))))
	}
	l, err := ratelimit.New(opts...)
	if err != nil {
		return err
	}
	defer l.Close()
	var n atomic.Int64
	var worst atomic.Int64
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) { n.Add(1); return nil, nil })
	time.Sleep(time.Until(c.start))
	ctx, cancel := context.WithDeadline(context.Background(), c.start.Add(c.dur))
	defer cancel()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := message.NewMessage("1", nil)
			msg.SetContext(ctx)
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := h(msg)
				if d := time.Since(t0).Microseconds(); d > worst.Load() {
					worst.Store(d)
				}
				if err != nil && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // deferred: the transport would redeliver later
				}
			}
		}()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		<-tick.C
		fmt.Printf("n %d %d %d %d %d\n", ms(c.start), n.Load(), worst.Swap(0), l.FleetMembers(), l.FleetHeld())
	}
	wg.Wait()
	return nil
}

// childBreaker sends messages through a fleet breaker; the downstream
// fails while the file FLEET_DIR/down exists and blocks while
// FLEET_DIR/gate exists. It prints "state <ms> <state>" at each change it
// sees (polled every 2ms) and "call <ms>" for each handler call made
// while the downstream is up.
func childBreaker(c childEnvVars, store *fleetredis.Store) error {
	b, err := breaker.NewFleet(breaker.Fleet{Store: store, Key: c.key, MinRequests: 20, FailureRatio: 0.5,
		Window: time.Second, OpenFor: time.Second, DrainWindow: 2 * time.Second, DrainRate: c.rate,
		ProbeTTL: 10 * time.Second, StoreTimeout: c.storeTimeout})
	if err != nil {
		return err
	}
	defer b.Close()
	exists := func(name string) bool { _, err := os.Stat(c.dir + "/" + name); return err == nil }
	var mu sync.Mutex
	h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
		if exists("down") {
			return nil, errors.New("downstream down")
		}
		mu.Lock()
		fmt.Printf("call %d\n", ms(c.start))
		mu.Unlock()
		for exists("gate") {
			time.Sleep(2 * time.Millisecond)
		}
		return nil, nil
	})
	time.Sleep(time.Until(c.start))
	ctx, cancel := context.WithDeadline(context.Background(), c.start.Add(c.dur))
	defer cancel()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msg := message.NewMessage(watermill.NewUUID(), nil) // distinct messages: a message's repeated failures count once
				msg.SetContext(ctx)
				_, _ = h(msg)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	last := breaker.FleetState(255)
	for ctx.Err() == nil {
		if st := b.State(); st != last {
			mu.Lock()
			fmt.Printf("state %d %s\n", ms(c.start), st)
			mu.Unlock()
			last = st
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	return nil
}
