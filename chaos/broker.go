package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// NATSServerBinary is where the private broker's nats-server is looked
// for (then on PATH).
const NATSServerBinary = "/usr/sbin/nats-server"

// privateNATS is a nats-server with JetStream that the run starts and
// owns: its own port and store folder, never the shared server.
type privateNATS struct {
	bin  string
	port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil while stopped
}

func startPrivateNATS(ctx context.Context) (*privateNATS, error) {
	bin := NATSServerBinary
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("nats-server")
		if lerr != nil {
			return nil, fmt.Errorf("levee/chaos: private broker: no nats-server at %s or on PATH", NATSServerBinary)
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "levee-chaos-nats-")
	if err != nil {
		return nil, err
	}
	b := &privateNATS{bin: bin, port: port, dir: dir}
	if err := b.start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func (b *privateNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(b.port) }

// start starts the server and waits until it accepts connections.
func (b *privateNATS) start(ctx context.Context) error {
	cmd := exec.Command(b.bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(b.port), "-sd", b.dir)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("levee/chaos: starting nats-server: %w", err)
	}
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		timer := time.NewTimer(20 * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	return errors.New("levee/chaos: private nats-server did not accept connections within 10s")
}

// halt stops the server: SIGTERM (a clean stop) or SIGKILL, and waits for
// it to exit.
func (b *privateNATS) halt(kill bool) error {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	_ = cmd.Wait()
	return nil
}

// stop kills the server for good and removes its store.
func (b *privateNATS) stop() {
	_ = b.halt(true)
	_ = os.RemoveAll(b.dir)
}

// restartBroker stops (or kills) the private broker at the fault's start
// and starts it again after its duration.
func restartBroker(ctx context.Context, done <-chan struct{}, tl *timeline, f Fault, b *privateNATS) {
	kill := f.Mode == "kill"
	how := "clean stop (SIGTERM)"
	if kill {
		how = "SIGKILL"
	}
	if err := b.halt(kill); err != nil {
		tl.add("broker_restart: %s failed: %v", how, err)
		return
	}
	tl.add("broker_restart: private nats-server down (%s)", how)
	sleepUntil(ctx, done, tl.start.Add(f.End()))
	if err := b.start(context.WithoutCancel(ctx)); err != nil {
		tl.add("broker_restart: restart failed: %v", err)
		return
	}
	tl.add("broker_restart: private nats-server up again")
}
