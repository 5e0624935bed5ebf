package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// RabbitScripts is where the private RabbitMQ node's rabbitmq-server and
// rabbitmqctl scripts are looked for (then on PATH). Debian's /usr/sbin
// wrappers switch to the rabbitmq user, which cannot read the run's
// temporary folder, so the scripts they wrap are preferred.
const RabbitScripts = "/usr/lib/rabbitmq/bin"

// privateRabbit is a RabbitMQ node the run starts and owns: its own node
// name, AMQP and distribution ports, data folder and Erlang cookie (HOME),
// so that it can be stopped, killed and restarted without touching the
// shared server on 5672. Its data survives restarts, as a real server's.
type privateRabbit struct {
	bin  string
	dir  string
	node string
	port int
	env  []string
}

// startPrivateBroker starts the plan's private broker (a nats-server, or a
// RabbitMQ node for transports amqp and amqp-quorum) and returns it with
// its URL; nil and "" when the plan has none.
func startPrivateBroker(ctx context.Context, p *Plan) (*privateNATS, string, error) {
	if !p.PrivateBroker {
		return nil, "", nil
	}
	if p.Transport == "nats" {
		b, err := startPrivateNATS(ctx)
		if err != nil {
			return nil, "", err
		}
		return b, b.url(), nil
	}
	b, err := startPrivateRabbit(ctx)
	if err != nil {
		return nil, "", err
	}
	return b, b.rabbit.url(), nil
}

func startPrivateRabbit(ctx context.Context) (*privateNATS, error) {
	bin := RabbitScripts
	if _, err := os.Stat(filepath.Join(bin, "rabbitmq-server")); err != nil {
		p, lerr := exec.LookPath("rabbitmq-server")
		if lerr != nil {
			return nil, fmt.Errorf("levee/chaos: private rabbitmq: no rabbitmq-server in %s or on PATH", RabbitScripts)
		}
		bin = filepath.Dir(p)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dist, err := freePort()
	if err != nil {
		return nil, err
	}
	// A short folder: Erlang and RabbitMQ put paths into socket names.
	dir, err := os.MkdirTemp("", "levee-rmq-")
	if err != nil {
		return nil, err
	}
	r := &privateRabbit{bin: bin, dir: dir, port: port,
		node: "levee_chaos_" + strings.ToLower(watermill.NewShortUUID()) + "@localhost"}
	files := map[string]string{
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\n", port),
		"enabled_plugins": "[].\n",
		// Replaces the system rabbitmq-env.conf, which names the shared node.
		"rabbitmq-env.conf": "ERL_EPMD_ADDRESS=127.0.0.1\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
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
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
	)
	b := &privateNATS{name: "rabbitmq", port: port, dir: dir, rabbit: r}
	if err := b.start(ctx); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (r *privateRabbit) url() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.port) }

func (r *privateRabbit) command(ctx context.Context, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, script), args...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	return cmd
}

func (r *privateRabbit) ctl(ctx context.Context, timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := r.command(ctx, "rabbitmqctl", append([]string{"-q", "-n", r.node}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("levee/chaos: rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start boots the node and waits until it accepts AMQP connections and
// finished booting (RabbitMQ takes some 10 to 20 seconds).
func (r *privateRabbit) start(ctx context.Context) error {
	if out, err := r.command(ctx, "rabbitmq-server", "-detached").CombinedOutput(); err != nil {
		return fmt.Errorf("levee/chaos: rabbitmq-server -detached: %w: %s", err, out)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("levee/chaos: private rabbitmq did not open port %d within 90s (logs in %s)", r.port, filepath.Join(r.dir, "log"))
		}
		timer := time.NewTimer(100 * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	return r.ctl(ctx, 60*time.Second, "await_startup")
}

// pid is the node's OS process id, 0 when it is not running.
func (r *privateRabbit) pid() int {
	b, err := os.ReadFile(filepath.Join(r.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// halt stops the node cleanly (rabbitmqctl stop: clients get
// connection.close) or with SIGKILL (clients see the connection reset),
// and waits until it is gone.
func (r *privateRabbit) halt(kill bool) error {
	pid := r.pid()
	if pid == 0 {
		return nil
	}
	ctx := context.Background()
	if !kill {
		if err := r.ctl(ctx, 60*time.Second, "stop", filepath.Join(r.dir, "pid")); err == nil {
			return nil
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// A killed node leaves its name in epmd until the distribution
	// socket closes; wait for that so the restart can register again.
	for r.ctl(ctx, 10*time.Second, "ping") == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
