package main

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
)

// The default configuration and its schemas, used when -config is not set.
//
//go:embed levee.yaml schemas/*.json
var embedded embed.FS

// loadConfig loads path, or the embedded configuration (written with its
// schemas to a temporary folder, so relative schema paths resolve).
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	dir, err := os.MkdirTemp("", "levee-orders-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	err = fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if err == nil {
				err = os.MkdirAll(filepath.Join(dir, p), 0o755)
			}
			return err
		}
		data, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
	if err != nil {
		return nil, err
	}
	return config.Load(filepath.Join(dir, "levee.yaml"))
}

// embeddedFile is how errors name the embedded configuration: the
// temporary copy it was loaded from is removed once loaded.
const embeddedFile = "examples/orders/levee.yaml"

// embeddedName returns err with the embedded configuration's temporary
// copy, which errors of the file name (file:line), named as embeddedFile
// instead; errors.Is still sees err.
func (d *demo) embeddedName(err error) error {
	if err == nil || d.o.configPath != "" || d.cfg == nil {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), d.cfg.File(), embeddedFile)
	if msg == err.Error() {
		return err
	}
	return &renamed{msg: msg, err: err}
}

type renamed struct {
	msg string
	err error
}

func (r *renamed) Error() string { return r.msg }
func (r *renamed) Unwrap() error { return r.err }

// applyConfig wraps the router's handlers in the concerns levee.yaml
// configures for them (dlq with schema validation, breaker, rate limits,
// priority), with the demo's transport, publisher and telemetry.
func (d *demo) applyConfig() error {
	// A shared store also counts failed attempts across instances, for the
	// dlq sections that say `attempts: shared`.
	attempts, _ := dlqstore.Attempts(d.store)
	dedupStore, err := d.dedupStore()
	if err != nil {
		return err
	}
	caps, cfg := d.tr.Capabilities, d.cfg
	deps := config.Deps{
		Publisher: d.pub, Logger: d.logger, TracerProvider: d.tel.tp, MeterProvider: d.tel.mp,
		System: caps.System, MaxInFlight: caps.MaxInFlight, AttemptStore: attempts, DedupStore: dedupStore,
		// Schemas are keyed by the plain topic names.
		Validator: func(topic string, payload []byte) error {
			if cfg.Schemas() == nil {
				return nil
			}
			return cfg.Schemas().Validate(d.names.unprefix(topic), payload)
		},
	}
	// Every state change of the payments breaker, for the -outage table.
	d.tl = newTimeline(d.start)
	deps.OnBreakerStateChange = func(name string, _, to breaker.State) {
		if name == "payments" {
			d.tl.transition(time.Now(), to)
		}
	}
	if caps.AckDeadline > 0 {
		// No wait may outlast the broker's ack deadline: hold at most 80%,
		// as adapters/service does.
		deps.MaxHold = time.Duration(float64(caps.AckDeadline) * service.HoldFraction)
	}
	applied, err := config.Apply(d.router, cfg, deps)
	if err != nil {
		return err
	}
	for name, fn := range d.handlerFuncs {
		applied.Locate(name, fn)
	}
	d.onClose(func() { applied.Close() })
	d.applied = applied
	return nil
}
