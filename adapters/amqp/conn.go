package amqp

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee/internal/redact"

	"github.com/levee-dev/levee/adapters/transport"
)

// Reconnection backoff of the AMQP transport: the first attempt follows a
// lost connection after redialMin, each failed attempt doubles the wait
// up to redialMax, and every wait is drawn from [d/2, d] so that many
// clients do not hammer a restarting broker in step.
const (
	redialMin = 250 * time.Millisecond
	redialMax = 5 * time.Second
)

// connection keeps one AMQP connection and dials again, with capped
// exponential backoff and no limit on attempts, whenever the connection
// drops (broker restart, network loss, missed heartbeats). Publishers and
// consumers take the current connection with wait and open their channels
// on it; they notice a loss through their channels and come back for the
// next connection.
//
// It replaces watermill-amqp's ConnectionWrapper, whose reconnect swaps
// the connection and its ready channel without synchronisation (a data
// race with every Publish and every consumer loop) and whose publisher
// channel pool loses a channel for good each time reopening one fails.
//
// connection is safe for concurrent use; Close is idempotent.
type connection struct {
	uri     string
	cfg     amqp.Config
	timeout time.Duration // one dial, handshake included
	logger  watermill.LoggerAdapter

	ctx    context.Context // cancelled by Close; aborts a dial in progress
	cancel context.CancelFunc
	done   chan struct{} // closed when supervise returns

	mu     sync.Mutex
	conn   *amqp.Connection // guarded by mu; nil while reconnecting
	gen    uint64           // guarded by mu; counts connections made
	ready  chan struct{}    // guarded by mu; closed while conn is set
	closed bool             // guarded by mu
}

// connect connects once (no retry: New reports an unreachable broker at
// once) and starts the goroutine that reconnects after a loss.
func connect(uri string, cfg amqp.Config, timeout time.Duration, logger watermill.LoggerAdapter) (*connection, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &connection{uri: uri, cfg: cfg, timeout: timeout, logger: logger, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	conn, err := c.dial()
	if err != nil {
		cancel()
		return nil, err
	}
	c.conn, c.gen, c.ready = conn, 1, make(chan struct{})
	close(c.ready)
	go c.supervise(conn)
	return c, nil
}

// dial opens a connection. The TCP connect and the AMQP handshake are
// bounded by the dial timeout and abandoned at once when Close is called.
func (c *connection) dial() (*amqp.Connection, error) {
	var stop func() bool
	cfg := c.cfg
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: c.timeout}
		nc, err := d.DialContext(c.ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// As amqp.DefaultDial: a deadline for the handshake, which the
		// client clears once the connection is open.
		if err := nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			_ = nc.Close()
			return nil, err
		}
		stop = context.AfterFunc(c.ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
		return nc, nil
	}
	conn, err := amqp.DialConfig(c.uri, cfg)
	if stop != nil {
		stop()
	}
	return conn, redact.Error(err, c.uri)
}

// supervise waits for the connection to drop and dials again until it
// succeeds or Close is called.
func (c *connection) supervise(conn *amqp.Connection) {
	defer close(c.done)
	for {
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.ctx.Done():
			return
		case aerr := <-lost:
			c.mu.Lock()
			c.conn, c.ready = nil, make(chan struct{})
			c.mu.Unlock()
			var err error = errors.New("levee/amqp: connection closed")
			if aerr != nil {
				err = aerr
			}
			c.logger.Error("AMQP connection lost, reconnecting", err, nil)
		}
		if conn = c.redial(); conn == nil {
			return
		}
	}
}

// redial dials with backoff until it connects (and installs the new
// connection) or Close is called (nil).
func (c *connection) redial() *amqp.Connection {
	delay := redialMin
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := c.dial()
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = conn.Close()
				return nil
			}
			c.conn = conn
			c.gen++
			close(c.ready)
			c.mu.Unlock()
			c.logger.Info("AMQP connection re-established", watermill.LogFields{"attempts": attempt})
			return conn
		}
		if c.ctx.Err() != nil {
			return nil
		}
		c.logger.Error("AMQP reconnect failed, retrying", err, watermill.LogFields{"attempt": attempt})
		delay = min(2*delay, redialMax)
	}
}

// current returns the open connection and its generation without waiting;
// ok is false while reconnecting or after Close.
func (c *connection) current() (conn *amqp.Connection, gen uint64, ok bool) {
	c.mu.Lock()
	conn, gen, closed := c.conn, c.gen, c.closed
	c.mu.Unlock()
	if closed || conn == nil || conn.IsClosed() {
		return nil, 0, false
	}
	return conn, gen, true
}

// wait returns the open connection and its generation, waiting while the
// transport reconnects until ctx is done. After Close it returns transport.ErrClosed.
func (c *connection) wait(ctx context.Context) (*amqp.Connection, uint64, error) {
	for {
		c.mu.Lock()
		conn, gen, ready, closed := c.conn, c.gen, c.ready, c.closed
		c.mu.Unlock()
		if closed {
			return nil, 0, transport.ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, gen, nil
		}
		if err := c.waitReady(ctx, ready, conn != nil); err != nil {
			return nil, 0, err
		}
	}
}

// waitReady waits for ready to close. When the connection in hand has
// dropped a moment ago and supervise has not noticed yet, ready is still
// the closed channel of the old connection: it then waits a short moment
// instead and the caller looks again.
func (c *connection) waitReady(ctx context.Context, ready <-chan struct{}, stale bool) error {
	var poll <-chan time.Time
	if stale {
		t := time.NewTimer(10 * time.Millisecond)
		defer t.Stop()
		ready, poll = nil, t.C
	}
	select {
	case <-ready:
	case <-poll:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return transport.ErrClosed
	}
	return nil
}

// Close stops reconnecting and closes the connection.
func (c *connection) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	c.cancel()
	<-c.done
	if conn != nil {
		if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return err
		}
	}
	return nil
}
