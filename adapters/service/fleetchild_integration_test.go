//go:build integration

package service_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/internal/testkit"
)

// runFleetChild is a replica (fleetChildEnv): a service.Run of the
// levee.yaml at FLEET_YAML consuming FLEET_TOPIC with handler "pay", until
// SIGTERM. It prints "h <ms since FLEET_START> <uuid>" for each handler
// call and "closed <ms>" once Close returned.
func runFleetChild() int {
	start, _ := strconv.ParseInt(os.Getenv("FLEET_START"), 10, 64)
	t0 := time.Unix(0, start)
	cfg, err := config.Load(os.Getenv("FLEET_YAML"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	svc, err := service.New(context.Background(), cfg, config.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	var mu sync.Mutex
	svc.Handle("pay", os.Getenv("FLEET_TOPIC"), func(m *message.Message) error {
		if os.Getenv("FLEET_FAIL") != "" {
			if _, err := os.Stat(os.Getenv("FLEET_FAIL")); err == nil {
				mu.Lock()
				fmt.Printf("f %d %s\n", time.Since(t0).Milliseconds(), m.UUID)
				mu.Unlock()
				return errDown
			}
		}
		mu.Lock()
		fmt.Printf("h %d %s\n", time.Since(t0).Milliseconds(), m.UUID)
		mu.Unlock()
		return nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
	}
	err = svc.Close()
	mu.Lock()
	fmt.Printf("closed %d\n", time.Since(t0).Milliseconds())
	mu.Unlock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: close:", err)
		return 1
	}
	return 0
}

// errDown is the downstream's failure while the file FLEET_FAIL exists.
var errDown = errors.New("downstream down")

// fleetReplicas runs replicas of one levee.yaml, each a process.
type fleetReplicas struct {
	t     *testing.T
	env   []string
	start time.Time
	cmds  []*exec.Cmd
	outs  []*testkit.Buffer
}

func newFleetReplicas(t *testing.T, yaml, topic string) *fleetReplicas {
	t.Helper()
	path := t.TempDir() + "/levee.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	fr := &fleetReplicas{t: t, start: time.Now()}
	fr.env = append(os.Environ(), fleetChildEnv+"=1", "FLEET_YAML="+path, "FLEET_TOPIC="+topic,
		"FLEET_START="+strconv.FormatInt(fr.start.UnixNano(), 10))
	t.Cleanup(func() {
		for _, c := range fr.cmds {
			if c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	return fr
}

// add starts one more replica, with env added to the fleet's, and
// returns its index.
func (fr *fleetReplicas) add(env ...string) int {
	fr.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(slices.Clip(fr.env), env...)
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Start(); err != nil {
		fr.t.Fatal(err)
	}
	fr.cmds, fr.outs = append(fr.cmds, cmd), append(fr.outs, out)
	return len(fr.cmds) - 1
}

// at sleeps until ms after start.
func (fr *fleetReplicas) at(ms int64) {
	time.Sleep(time.Until(fr.start.Add(time.Duration(ms) * time.Millisecond)))
}

// stop sends sig to replica i; for SIGTERM it waits for its exit and
// returns how long that took.
func (fr *fleetReplicas) stop(i int, sig syscall.Signal) time.Duration {
	fr.t.Helper()
	t0 := time.Now()
	if err := fr.cmds[i].Process.Signal(sig); err != nil {
		fr.t.Fatal(err)
	}
	err := fr.cmds[i].Wait()
	if sig == syscall.SIGTERM && err != nil {
		fr.t.Errorf("replica %d after SIGTERM: %v", i, err)
	}
	return time.Since(t0)
}

// calls returns every handler call of every replica that succeeded (and
// with failures, those that failed too): its time in ms and the
// message's UUID, in time order.
func (fr *fleetReplicas) calls(failures bool) (at []int64, ids []string) {
	type call struct {
		at int64
		id string
	}
	var all []call
	for _, out := range fr.outs {
		sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && (f[0] == "h" || f[0] == "f" && failures) {
				ms, _ := strconv.ParseInt(f[1], 10, 64)
				all = append(all, call{ms, f[2]})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	for _, c := range all {
		at, ids = append(at, c.at), append(ids, c.id)
	}
	return at, ids
}

// worstWindow is the most calls in any window of w ms within [from, to).
func worstWindow(at []int64, w, from, to int64) int {
	worst, j := 0, 0
	for i := range at {
		if at[i] < from || at[i] >= to {
			continue
		}
		for at[j] < from || at[i]-at[j] >= w {
			j++
		}
		worst = max(worst, i-j+1)
	}
	return worst
}

// freshFleetPrefix is a fleet key prefix of the test's own on the shared
// Redis, its keys deleted at the end.
func freshFleetPrefix(t *testing.T) string {
	t.Helper()
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() }) // after Fresh's cleanup
	return brokertest.Fresh(t, "levee_svc_fleet", func(p string) error {
		keys, err := rc.Keys(context.Background(), p+":*").Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return rc.Del(context.Background(), keys...).Err()
	})
}

// publisherOf is a publisher on the transport of the levee.yaml y.
func publisherOf(t *testing.T, y string) message.Publisher {
	t.Helper()
	tc, err := adapters.FromConfig(parse(t, y))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := adapters.Build(context.Background(), tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr.Publisher
}

// handledAll waits up to 30s for every id of want to be handled, fails
// the test for each one that was not, and returns the calls.
func (fr *fleetReplicas) handledAll(want map[string]bool) (at []int64, ids []string) {
	fr.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		at, ids = fr.calls(false)
		seen := map[string]bool{}
		for _, id := range ids {
			seen[id] = true
		}
		if len(seen) >= len(want) || time.Now().After(deadline) {
			for id := range want {
				if !seen[id] {
					fr.t.Errorf("message %s never handled", id)
				}
			}
			return at, ids
		}
	}
}

// stateLog records the fleet breaker's state in Redis (field st of the
// state hash) each time it changes, polled every 5ms.
type stateLog struct {
	mu      sync.Mutex
	changes []stateChange // guarded by mu
}

type stateChange struct {
	at    int64 // ms since the replicas' start
	state string
	base  string
}

func watchState(t *testing.T, fr *fleetReplicas, key string) *stateLog {
	t.Helper()
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	ctx, cancel := context.WithCancel(context.Background())
	sl := &stateLog{}
	var wg sync.WaitGroup
	wg.Go(func() {
		last := ""
		for ctx.Err() == nil {
			v, err := rc.HMGet(ctx, key, "st", "base").Result()
			if err == nil {
				st, _ := v[0].(string)
				base, _ := v[1].(string)
				if st != last {
					sl.mu.Lock()
					sl.changes = append(sl.changes, stateChange{time.Since(fr.start).Milliseconds(), st, base})
					sl.mu.Unlock()
					last = st
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); _ = rc.Close() })
	return sl
}

// first is the first change to state at or after from (ok false: none).
func (sl *stateLog) first(state string, from int64) (stateChange, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for _, c := range sl.changes {
		if c.state == state && c.at >= from {
			return c, true
		}
	}
	return stateChange{}, false
}

// waitFor waits up to 10s for a change to state at or after from.
func (sl *stateLog) waitFor(t *testing.T, state string, from int64) stateChange {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, ok := sl.first(state, from); ok {
			return c
		}
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	t.Fatalf("the fleet breaker was never %s from %dms: %v", state, from, sl.changes)
	return stateChange{}
}

// callsIn counts the calls in [from, to).
func callsIn(at []int64, from, to int64) int {
	n := 0
	for _, a := range at {
		if a >= from && a < to {
			n++
		}
	}
	return n
}
