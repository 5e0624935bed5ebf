// Package kit holds the helpers the per-transport packages share: the
// reachability probe, address checks, configuration errors and the reading
// of the retry-after key. It imports no broker client.
package kit

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// Probe opens and closes a TCP connection to addr within timeout, so an
// unreachable broker fails Build at once with an error naming the transport
// and the address instead of hanging in a client's retry loop.
func Probe(ctx context.Context, kind, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Unreachable(kind, addr, err)
	}
	return conn.Close()
}

// Unreachable wraps transport.ErrUnreachable, naming the transport and the
// address.
func Unreachable(kind, addr string, err error) error {
	return fmt.Errorf("%w: %s at %s: %v (Build does not retry; start the broker or fix the address)", transport.ErrUnreachable, kind, addr, err)
}

// HostPort returns host:port of a URL, adding defPort when absent.
func HostPort(raw, defPort string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redact.URL(raw)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}
