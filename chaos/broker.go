package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Where the private servers' binaries are looked for (then on PATH).
const (
	NATSServerBinary  = "/usr/sbin/nats-server"
	RedisServerBinary = "/usr/bin/redis-server"
)

// privateNATS is a server process (a nats-server with JetStream, or a
// redis-server with an fsync-always append-only file) that the run starts
// and owns: its own port and data folder, never the shared server.
type privateNATS struct {
	name string
	bin  string
	port int
	dir  string
	args func(port, dir string) []string
	// stopSignal is the clean stop's signal (default SIGTERM).
	stopSignal syscall.Signal
	// cred runs the server as another user (nil: as this process).
	cred *syscall.Credential
	// rabbit, when set, is a RabbitMQ node that starts and stops itself
	// (rabbitmq-server -detached, rabbitmqctl).
	rabbit *privateRabbit

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil while stopped
}

func startPrivateNATS(ctx context.Context) (*privateNATS, error) {
	return startPrivate(ctx, "nats-server", NATSServerBinary, func(port, dir string) []string {
		return []string{"-js", "-a", "127.0.0.1", "-p", port, "-sd", dir}
	})
}

// startPrivateRedis starts a redis-server whose every write is fsynced to
// its append-only file, so a SIGKILL loses nothing it acknowledged.
func startPrivateRedis(ctx context.Context) (*privateNATS, error) {
	return startPrivate(ctx, "redis-server", RedisServerBinary, func(port, dir string) []string {
		return []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes",
			"--appendfsync", "always", "--save", "", "--daemonize", "no"}
	})
}

func startPrivate(ctx context.Context, name, bin string, args func(port, dir string) []string) (*privateNATS, error) {
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath(name)
		if lerr != nil {
			return nil, fmt.Errorf("levee/chaos: private server: no %s at %s or on PATH", name, bin)
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "levee-chaos-"+name+"-")
	if err != nil {
		return nil, err
	}
	b := &privateNATS{name: name, bin: bin, port: port, dir: dir, args: args}
	if err := b.start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func (b *privateNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(b.port) }

func (b *privateNATS) redisURL() string { return "redis://127.0.0.1:" + strconv.Itoa(b.port) + "/0" }

// start starts the server and waits until it accepts connections.
func (b *privateNATS) start(ctx context.Context) error {
	if b.rabbit != nil {
		return b.rabbit.start(ctx)
	}
	cmd := exec.Command(b.bin, b.args(strconv.Itoa(b.port), b.dir)...)
	// Its own process group, so that what it forked is found after a kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: b.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("levee/chaos: starting %s: %w", b.name, err)
	}
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			if b.name != "postgres" || pgReady(ctx, b.bin, b.port) {
				return nil
			}
		}
		timer := time.NewTimer(20 * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	return fmt.Errorf("levee/chaos: private %s did not accept connections within 30s", b.name)
}

// halt stops the server: its stop signal (a clean stop) or SIGKILL, and
// waits for it and its process group to exit.
func (b *privateNATS) halt(kill bool) error {
	if b.rabbit != nil {
		return b.rabbit.halt(kill)
	}
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if b.stopSignal != 0 {
		sig = b.stopSignal
	}
	if kill {
		sig = syscall.SIGKILL
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	_ = cmd.Wait()
	// A SIGKILLed postmaster's backends outlive it for a moment.
	waitGroupGone(context.Background(), cmd.Process.Pid, 5*time.Second)
	return nil
}

// stop kills the server for good and removes its store.
func (b *privateNATS) stop() {
	_ = b.halt(true)
	_ = os.RemoveAll(b.dir)
}

// restartBroker stops (or kills) the private server at the fault's start
// and starts it again after its duration.
func restartBroker(ctx context.Context, done <-chan struct{}, tl *timeline, f Fault, b *privateNATS) {
	if b == nil {
		tl.add("%s: no private server to restart", f.Kind)
		return
	}
	kill := f.Mode == "kill"
	how := "clean stop (SIGTERM)"
	if b.stopSignal == syscall.SIGINT {
		how = "clean stop (SIGINT, a fast shutdown)"
	}
	if b.rabbit != nil {
		how = "clean stop (rabbitmqctl stop)"
	}
	if kill {
		how = "SIGKILL"
	}
	if err := b.halt(kill); err != nil {
		tl.add("%s: %s failed: %v", f.Kind, how, err)
		return
	}
	tl.add("%s: private %s down (%s)", f.Kind, b.name, how)
	sleepUntil(ctx, done, tl.start.Add(f.End()))
	if err := b.start(context.WithoutCancel(ctx)); err != nil {
		tl.add("%s: restart failed: %v", f.Kind, err)
		return
	}
	tl.add("%s: private %s up again", f.Kind, b.name)
}
