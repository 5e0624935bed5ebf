//go:build integration

package amqp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters/amqp"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// privateRabbit is a RabbitMQ node this test owns: its own node name, AMQP
// and distribution ports, data directory and Erlang cookie (HOME), so it can
// be stopped, killed and restarted without touching the shared server on
// 5672 that other tests and other packages use at the same time. It runs
// the installed rabbitmq-server; the node's data survives restarts, as a
// real server's does.
type privateRabbit struct {
	t    *testing.T
	bin  string // directory holding rabbitmq-server and rabbitmqctl
	dir  string
	node string
	port int
	env  []string
}

// rabbitScripts finds the directory of the rabbitmq-server and rabbitmqctl
// scripts. Debian's /usr/sbin wrappers switch to the rabbitmq user, which
// cannot read a test's temporary directory, so the scripts they wrap are
// preferred.
func rabbitScripts() (string, bool) {
	for _, dir := range []string{"/usr/lib/rabbitmq/bin"} {
		if _, err := os.Stat(filepath.Join(dir, "rabbitmq-server")); err == nil {
			return dir, true
		}
	}
	p, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		return "", false
	}
	return filepath.Dir(p), true
}

func newPrivateRabbit(t *testing.T) *privateRabbit {
	t.Helper()
	bin, ok := rabbitScripts()
	if !ok {
		t.Skip("rabbitmq-server not installed")
	}
	// A short directory: Erlang and RabbitMQ put paths into socket and
	// file names.
	dir, err := os.MkdirTemp("", "levee-rmq-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	r := &privateRabbit{
		t:    t,
		bin:  bin,
		dir:  dir,
		node: "levee_restart_" + strings.ToLower(watermill.NewShortUUID()) + "@localhost",
		port: brokertest.FreePort(t),
	}
	conf := fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\n", r.port)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[].\n"), 0o644))
	// Replaces the system rabbitmq-env.conf, which names the shared node.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rabbitmq-env.conf"), []byte("ERL_EPMD_ADDRESS=127.0.0.1\n"), 0o644))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "HOME=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env,
		"HOME="+dir, // the node's and the CLI's Erlang cookie
		"RABBITMQ_NODENAME="+r.node,
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(brokertest.FreePort(t)),
	)
	// Registered before start so a test failing midway still stops the node.
	t.Cleanup(r.stop)
	return r
}

func (r *privateRabbit) url() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.port)
}

func (r *privateRabbit) command(ctx context.Context, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, script), args...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	return cmd
}

func (r *privateRabbit) ctl(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := r.command(ctx, "rabbitmqctl", append([]string{"-q", "-n", r.node}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start boots the node and waits until it accepts AMQP connections.
func (r *privateRabbit) start() {
	r.t.Helper()
	out, err := r.command(context.Background(), "rabbitmq-server", "-detached").CombinedOutput()
	require.NoError(r.t, err, "rabbitmq-server -detached: %s", out)
	deadline := time.Now().Add(90 * time.Second)
	for !portOpen(r.port) {
		if time.Now().After(deadline) {
			r.t.Fatalf("private RabbitMQ did not open port %d within 90s (logs in %s)", r.port, filepath.Join(r.dir, "log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(r.t, r.ctl(60*time.Second, "await_startup"))
}

// pid is the node's OS process id, 0 when it is not running.
func (r *privateRabbit) pid() int {
	b, err := os.ReadFile(filepath.Join(r.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// stop shuts the node down cleanly (clients get connection.close) and
// waits for the process to exit; it kills the process if that fails.
// Stopping a stopped node does nothing.
func (r *privateRabbit) stop() {
	pid := r.pid()
	if pid == 0 {
		return
	}
	if err := r.ctl(60*time.Second, "stop", filepath.Join(r.dir, "pid")); err != nil {
		r.t.Logf("clean stop failed, killing the node: %v", err)
		r.kill()
	}
}

// kill ends the node's process with SIGKILL, as a crash would: clients see
// the TCP connection reset, with no AMQP close.
func (r *privateRabbit) kill() {
	pid := r.pid()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// A killed node leaves its name in epmd until the distribution
	// socket closes; wait for it so the restart can register again.
	for r.ctl(10*time.Second, "ping") == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestAMQPBrokerRestart stops RabbitMQ cleanly and, later, kills it, each
// time while 4 consumers are working through a durable queue and a
// publisher is publishing, then starts it again. Consumption resumes after
// each restart and every published message is consumed at least once
// (duplicates allowed, losses not), including those published during and
// after the outages.
func TestAMQPBrokerRestart(t *testing.T) {
	rmq := newPrivateRabbit(t)
	rmq.start()

	tr, err := amqp.New(context.Background(), amqp.Config{URL: rmq.url()}, transport.Settings{Concurrency: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })

	topic := "restart_" + strings.ToLower(watermill.NewShortUUID())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	const total = 300
	var (
		mu         sync.Mutex
		seen       = map[string]int{}
		deliveries int
	)
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	var consumers sync.WaitGroup
	for range 4 {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for msg := range ch {
				if msg.UUID == "" || !strings.HasPrefix(msg.UUID, "m-") {
					t.Errorf("consumed a message that was never published: uuid %q payload %q", msg.UUID, msg.Payload)
				}
				// Some work, so deliveries are in flight when the broker goes.
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
				mu.Lock()
				seen[msg.UUID]++
				deliveries++
				mu.Unlock()
				msg.Ack()
			}
		}()
	}

	// publish retries each message until the broker confirms it: a
	// publish that fails during the outage may or may not have reached the
	// queue, so a retry can make a duplicate but never a loss.
	publish := func(from, to int, gap time.Duration) error {
		for i := from; i < to; i++ {
			deadline := time.Now().Add(90 * time.Second)
			for {
				msg := message.NewMessage("m-"+strconv.Itoa(i), []byte(strconv.Itoa(i)))
				err := tr.Publisher.Publish(topic, msg)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("publish %d: still failing after 90s: %w", i, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(gap)
		}
		return nil
	}
	waitConsumed := func(n int, why string) {
		t.Helper()
		deadline := time.Now().Add(120 * time.Second)
		for distinct() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d distinct messages consumed after 120s", why, distinct(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	third := total / 3
	require.NoError(t, publish(0, third, 0))
	waitConsumed(third/3, "before the first outage")

	// outage publishes [from, to) in the background, one message every
	// 20ms (about 2s of publishing), while the broker goes down (cleanly
	// or by a kill) and comes back: publishes happen before, during and
	// after the outage, and the backlog left by the first third is still
	// being consumed when the first one begins.
	outage := func(from, to int, down func()) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- publish(from, to, 20*time.Millisecond) }()
		began := time.Now()
		down()
		require.Equal(t, 0, rmq.pid(), "the node still runs after the outage began")
		stopped := time.Now()
		after := distinct()
		rmq.start()
		t.Logf("broker down for %s (stopping took %s), %d distinct consumed before it came back",
			time.Since(stopped).Round(time.Millisecond), stopped.Sub(began).Round(time.Millisecond), after)
		// Consumption resumes: messages get consumed after the restart.
		back := time.Now()
		waitConsumed(after+1, "after the restart")
		t.Logf("consumption resumed %s after the broker came back", time.Since(back).Round(time.Millisecond))
		require.NoError(t, <-done)
	}

	outage(third, 2*third, rmq.stop)
	outage(2*third, total, rmq.kill)

	waitConsumed(total, "all messages")
	cancel()
	consumers.Wait()

	mu.Lock()
	defer mu.Unlock()
	for i := range total {
		if seen["m-"+strconv.Itoa(i)] == 0 {
			t.Errorf("message m-%d was never consumed", i)
		}
	}
	t.Logf("%d messages, %d deliveries (%d redelivered after the outages)", total, deliveries, deliveries-total)
}
