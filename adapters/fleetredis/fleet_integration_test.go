//go:build integration

package fleetredis_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/internal/testkit"
)

// replicas is how many child processes each test runs.
const replicas = 4

// fleetTest is one run of child replicas against one fleet key.
type fleetTest struct {
	t      *testing.T
	url    string
	prefix string
	start  time.Time
	env    []string
	cmds   []*exec.Cmd
	outs   []*testkit.Buffer
}

func sharedRedis(t *testing.T) (url, prefix string) {
	t.Helper()
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	url = brokertest.RedisURL()
	prefix = brokertest.Fresh(t, "levee_fleet_test", func(p string) error {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx := context.Background()
		keys, err := c.Keys(ctx, p+":*").Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return c.Del(ctx, keys...).Err()
	})
	return url, prefix
}

// startChildren starts n replicas of mode; they begin at the same instant,
// 500ms from now (the binary's start-up), and run for dur.
func startChildren(t *testing.T, url, prefix, mode string, n int, dur time.Duration, vars map[string]string) *fleetTest {
	t.Helper()
	ft := &fleetTest{t: t, url: url, prefix: prefix, start: time.Now().Add(500 * time.Millisecond)}
	env := append(os.Environ(), childEnv+"="+mode, "FLEET_URL="+url, "FLEET_PREFIX="+prefix,
		"FLEET_START="+strconv.FormatInt(ft.start.UnixNano(), 10), "FLEET_DUR_MS="+strconv.FormatInt(dur.Milliseconds(), 10))
	defaults := map[string]string{"FLEET_KEY": "payments", "FLEET_RATE": "100", "FLEET_LOCAL": "0",
		"FLEET_WORKERS": "8", "FLEET_ON_ERR": "local", "FLEET_DIR": t.TempDir(), "FLEET_STORE_TIMEOUT_MS": "50"}
	for k, v := range vars {
		defaults[k] = v
	}
	for k, v := range defaults {
		env = append(env, k+"="+v)
	}
	ft.env = env
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		out := &testkit.Buffer{}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ft.cmds, ft.outs = append(ft.cmds, cmd), append(ft.outs, out)
	}
	t.Cleanup(func() {
		for _, c := range ft.cmds {
			if c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	return ft
}

// wait waits for every child that was not killed.
func (ft *fleetTest) wait() {
	ft.t.Helper()
	for i, c := range ft.cmds {
		err := c.Wait()
		if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			continue
		}
		if err != nil {
			ft.t.Fatalf("replica %d: %v", i, err)
		}
	}
}

// sample is one "n" line of a rate child.
type sample struct {
	at, n, worstUS, members, held int64
}

func (ft *fleetTest) samples(i int) []sample {
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(ft.outs[i].Bytes()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || f[0] != "n" {
			continue
		}
		var s sample
		for j, p := range []*int64{&s.at, &s.n, &s.worstUS, &s.members, &s.held} {
			*p, _ = strconv.ParseInt(f[j+1], 10, 64)
		}
		out = append(out, s)
	}
	return out
}

// sampleAt is the child's first sample at or after ms (or its last).
func sampleAt(ss []sample, ms int64) sample {
	for _, s := range ss {
		if s.at >= ms {
			return s
		}
	}
	if len(ss) == 0 {
		return sample{}
	}
	return ss[len(ss)-1]
}

// fleetRate sums the children's rates between from and to (ms since
// start). Each child's rate is taken between its own samples' times, so a
// late sample (a busy machine) does not count as extra admissions.
func (ft *fleetTest) fleetRate(from, to int64, children ...int) float64 {
	if children == nil {
		for i := range ft.cmds {
			children = append(children, i)
		}
	}
	var total float64
	for _, i := range children {
		ss := ft.samples(i)
		a, b := sampleAt(ss, from), sampleAt(ss, to)
		if b.at > a.at {
			total += float64(b.n-a.n) / (float64(b.at-a.at) / 1000)
		}
	}
	return total
}

// TestFleetRate: 4 processes share one fleet limit at 100/s, 1,000/s and
// 10,000/s. Each runs 1s of warm-up and a 3s measuring window; the fleet's
// rate over the window is within 5% of the target.
func TestFleetRate(t *testing.T) {
	url, prefix := sharedRedis(t)
	for _, rate := range []int{100, 1000, 10000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			ft := startChildren(t, url, prefix, "rate", replicas, 4100*time.Millisecond,
				map[string]string{"FLEET_KEY": "rate" + strconv.Itoa(rate), "FLEET_RATE": strconv.Itoa(rate),
					// A store call slower than the store timeout (a busy machine,
					// -race) would switch a replica to its local share while the
					// others lease: measure the lease path, not the fallback.
					"FLEET_STORE_TIMEOUT_MS": "500"})
			ft.wait()
			got := ft.fleetRate(1000, 4000)
			t.Logf("fleet rate %.1f/s over 3s, target %d/s (%+.2f%%)", got, rate, 100*(got/float64(rate)-1))
			if got < float64(rate)*0.95 || got > float64(rate)*1.05 {
				t.Errorf("fleet rate %.1f/s, want %d/s +-5%%", got, rate)
			}
			for i := range replicas {
				ss := ft.samples(i)
				if m := ss[len(ss)-1].members; m != replicas {
					t.Errorf("replica %d sees %d members, want %d", i, m, replicas)
				}
			}
		})
	}
}

// TestFleetReplicaKilledHoldingALease: one of 4 replicas is killed with
// SIGKILL while it holds a lease. Each replica's demand (a local limit of
// 240/s) is below its share of the 1,000/s fleet limit, so leases are
// granted whole and held between messages. The killed one strands at most
// one lease (rate x 200ms tokens), the 3 others go on at their own rate,
// and the store counts 3 live replicas once the member TTL (1s) passed.
func TestFleetReplicaKilledHoldingALease(t *testing.T) {
	url, prefix := sharedRedis(t)
	const rate, local = 1000, 240
	ft := startChildren(t, url, prefix, "rate", replicas, 3500*time.Millisecond,
		map[string]string{"FLEET_KEY": "kill", "FLEET_RATE": strconv.Itoa(rate), "FLEET_LOCAL": strconv.Itoa(local)})
	// Kill it at its first sample from 1.5s on that shows it holding tokens.
	ft.at(1500)
	var last sample
	for deadline := ft.start.Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if ss := ft.samples(0); len(ss) > 0 && ss[len(ss)-1].at >= 1500 && ss[len(ss)-1].held > 0 {
			last = ss[len(ss)-1]
			break
		}
	}
	if last.held == 0 {
		t.Fatal("the replica to kill held no token at any sample from 1.5s to 3s")
	}
	if err := ft.cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Since(ft.start).Milliseconds()
	ft.wait()
	const lease = rate / 5 // rate x the 200ms lease period
	t.Logf("killed at %dms; its sample at %dms held %d tokens (at most one lease, %d)", killed, last.at, last.held, lease)
	if last.held > lease {
		t.Errorf("killed replica held %d tokens, want at most one lease (%d)", last.held, lease)
	}
	survivors := ft.fleetRate(killed, 3500, 1, 2, 3)
	t.Logf("survivors' rate from the kill to the end: %.1f/s, their local limits %d/s", survivors, 3*local)
	if survivors < 3*local*0.95 || survivors > 3*local*1.05 {
		t.Errorf("survivors' rate %.1f/s, want %d/s +-5%% (unaffected by the dead replica's lease)", survivors, 3*local)
	}
	if ss := ft.samples(1); ss[len(ss)-1].members != replicas-1 {
		t.Errorf("survivor sees %d members, want %d once the dead one's member TTL passed", ss[len(ss)-1].members, replicas-1)
	}
}
