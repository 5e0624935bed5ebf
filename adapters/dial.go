package adapters

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/levee-dev/levee/internal/redact"
)

// probe opens and closes a TCP connection to addr within timeout, so an
// unreachable broker fails Build at once with an error naming the transport
// and the address instead of hanging in a client's retry loop.
func probe(ctx context.Context, kind, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return unreachable(kind, addr, err)
	}
	return conn.Close()
}

func unreachable(kind, addr string, err error) error {
	return fmt.Errorf("%w: %s at %s: %v (Build does not retry; start the broker or fix the address)", ErrUnreachable, kind, addr, err)
}

// hostPort returns host:port of a URL, adding defPort when absent.
func hostPort(raw, defPort string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redact.URL(raw)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}
