package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/cmd/internal/console"
)

// serve runs `levee dlq serve`: the dead-letter console on the configured
// store (docs/CONSOLE.md).
func (c *dlqCmd) serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.commonFlags(fs)
	listen := fs.String("listen", "", "address to serve (default console.listen, else "+console.DefaultListen+")")
	insecure := fs.Bool("insecure-loopback", false, "serve without authentication (loopback addresses only)")
	readOnly := fs.Bool("no-replay", false, "do not connect to the transport: replays are off")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	cfg, sc, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	var cc console.Config
	if err := cfg.Console().Decode(&cc); err != nil {
		return err
	}
	addr := *listen
	if addr == "" {
		addr = cc.Listen
	}
	if addr == "" {
		addr = console.DefaultListen
	}
	if err := console.CheckListen(&cc, addr, *insecure); err != nil {
		return err
	}
	var pub message.Publisher
	if !*readOnly {
		p, closePub, err := c.openPublisher(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%w (or pass --no-replay)", err)
		}
		defer closePub()
		pub = p
	}
	validator, err := replayValidator(cfg)
	if err != nil {
		return err
	}
	audit := c.stderr
	if cc.AuditLog != "" {
		f, err := os.OpenFile(cc.AuditLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		audit = f
	}
	srv, err := console.New(cc, console.Deps{Store: s, Publisher: pub, Validator: validator,
		ReplayTopics: sc.ReplayTopics, Audit: audit})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "levee dlq serve: http://%s\n", ln.Addr())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
