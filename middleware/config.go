package middleware

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/validate"
	"github.com/levee-dev/levee/internal/config"
)

// ErrInvalidConfig is wrapped by every configuration error: a broken file, an
// unknown key, a wrong type, a bad value, a missing variable. The error
// text names the file, the line and the key path. NewTimeout wraps it too,
// and errors.Is matches it with levee.ErrInvalidConfig.
var ErrInvalidConfig = config.ErrInvalidConfig

// Config is a loaded and validated levee.yaml. Build it with LoadConfig or
// ParseConfig; apply it with Apply.
type Config struct {
	// File is the path the configuration was read from.
	File string
	// Transport is the undecoded transport section, decoded by adapters.
	Transport config.Raw
	// Handlers holds each configured handler, by router handler name.
	Handlers map[string]*HandlerConfig
	// Schemas validates payloads per topic (the top-level schemas section,
	// paths relative to the file's folder); nil when there is none.
	Schemas *validate.Registry
	// Shared holds the named shared resources (for example schedulers),
	// by section key and then by name, undecoded until a concern needs
	// them.
	Shared map[string]map[string]config.Raw

	sections []Section
}

// HandlerConfig is one handler's section: one key per concern.
type HandlerConfig struct {
	// Name is the router handler name.
	Name   string
	raw    map[string]config.Raw
	parts  []part
	values map[string]any // decoded sections of SlotHandler, by key
}

// Value returns the decoded value of a section that configures the handler
// itself rather than a middleware (SlotHandler, for example "batch" as a
// batch.Config), and whether it was present.
func (h *HandlerConfig) Value(key string) (any, bool) {
	v, ok := h.values[key]
	return v, ok
}

type part struct {
	sec   Section
	value any
}

// Section returns the undecoded section key of the handler and whether it
// was present.
func (h *HandlerConfig) Section(key string) (config.Raw, bool) {
	r, ok := h.raw[key]
	return r, ok
}

// Describe returns the handler's resolved stack in canonical order, one
// concern per line with its settings.
func (h *HandlerConfig) Describe() string {
	var b strings.Builder
	for i, p := range h.parts {
		fmt.Fprintf(&b, "%d. %s", i+1, p.sec.Key)
		if l := p.sec.label(p.value); l != "" {
			b.WriteString(" ")
			b.WriteString(l)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Deps are what building middlewares from configuration needs beyond the
// file. Every field may be left zero.
type Deps struct {
	// Publisher publishes dead letters (dlq) and is decorated by tracing.
	Publisher message.Publisher
	// Logger receives warnings and errors; nil means no logging.
	Logger watermill.LoggerAdapter
	// TracerProvider and MeterProvider turn telemetry on; nil means off.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// System is the messaging.system of the transport (for example
	// "rabbitmq"), put on consumer spans; adapters know it.
	System string
	// MaxHold bounds every wait of a message (breaker, priority, rate
	// limit, retry backoff), normally the transport's ack deadline. Zero
	// means no bound. A section's own max_hold takes precedence.
	MaxHold time.Duration
	// Validator, when set, validates payloads before every attempt in the
	// dlq slot instead of the file's schemas (for example a registry
	// compiled from embedded schemas: registry.Validate).
	Validator func(topic string, payload []byte) error
	// MaxInFlight is how many messages the transport delivers at once per
	// handler, used for start-up warnings (for example a batch larger than
	// what can ever be in flight). Zero means unknown.
	MaxInFlight int
	// AttemptStore counts failed attempts across processes for the dlq
	// sections with `attempts: shared` (adapters/dlqstore.Attempts builds
	// it from the store section). Nil: such a section fails to build.
	AttemptStore dlq.AttemptStore
}

// BuildEnv is what a Section's builder receives.
type BuildEnv struct {
	Handler string
	Deps    Deps
	// Schemas is the file's schema registry, or nil.
	Schemas *validate.Registry
	// Shared returns (creating once, and closing with Applied.Close) a
	// shared resource by section and name.
	Shared func(section, name string) (any, error)
	// Also adds mw to another slot of the same stack, outside that slot's
	// own middleware (the breaker puts its drain ramp in the ratelimit
	// slot this way).
	Also func(slot Slot, mw message.HandlerMiddleware, label string)
}

// Section describes one concern's handler-level configuration key: how to
// decode and validate it, and how to build its middleware. Concern packages
// own their section structs; the list of sections lives in this package.
type Section struct {
	Key  string
	Slot Slot
	// decode decodes and validates raw; it returns the section value.
	decode func(raw config.Raw) (any, error)
	// label describes a decoded value for `levee config check`.
	label func(v any) string
	// ref, when set, names the shared resource a decoded value refers to
	// (section, name, and the key holding the name), checked at load.
	ref func(v any) (section, name, key string)
	// build returns the middleware for a decoded value, and an optional
	// closer for resources it created.
	build func(v any, b BuildEnv) (message.HandlerMiddleware, io.Closer, error)
}

// NewSection returns a Section whose value type is C. decode into C is
// strict and located; C's Validate method, if any, runs after decoding.
func NewSection[C any](key string, slot Slot, label func(C) string,
	build func(C, BuildEnv) (message.HandlerMiddleware, io.Closer, error)) Section {
	return Section{
		Key:  key,
		Slot: slot,
		decode: func(raw config.Raw) (any, error) {
			var c C
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			return c, nil
		},
		label: func(v any) string { return label(v.(C)) },
		build: func(v any, b BuildEnv) (message.HandlerMiddleware, io.Closer, error) {
			return build(v.(C), b)
		},
	}
}

// LoadConfig reads, expands and validates the file at path with the
// default sections. See ParseConfig.
func LoadConfig(path string) (*Config, error) {
	doc, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return fromDocument(doc, DefaultSections())
}

// ParseConfig parses data as the file named file. Variables are expanded
// with env (nil means none are set; os.LookupEnv is the usual choice).
// sections lists the handler-level keys that are accepted; nil means
// DefaultSections().
func ParseConfig(file string, data []byte, env func(string) (string, bool), sections []Section) (*Config, error) {
	doc, err := config.Parse(file, data, env)
	if err != nil {
		return nil, err
	}
	if sections == nil {
		sections = DefaultSections()
	}
	return fromDocument(doc, sections)
}

// The top level of a levee.yaml.
type fileConfig struct {
	Transport  config.Raw                       `yaml:"transport"`
	Handlers   map[string]map[string]config.Raw `yaml:"handlers"`
	Schedulers map[string]config.Raw            `yaml:"schedulers"`
	Breakers   map[string]config.Raw            `yaml:"breakers"`
	Store      config.Raw                       `yaml:"store"`
	Schemas    config.Raw                       `yaml:"schemas"`
}

// fromDocument builds a Config from a parsed document. It is past 80 lines
// because it is one pass over the file's top level in order (shared
// resources, store, schemas, then each handler's sections and its
// references), every step needing the results of the steps before it.
func fromDocument(doc *config.Document, sections []Section) (*Config, error) {
	var fc fileConfig
	if err := doc.Decode(&fc); err != nil {
		return nil, err
	}
	cfg := &Config{
		File:      doc.File,
		Transport: fc.Transport,
		Handlers:  map[string]*HandlerConfig{},
		Shared:    map[string]map[string]config.Raw{"schedulers": fc.Schedulers, "breakers": fc.Breakers},
		sections:  sections,
	}
	if !fc.Schemas.IsZero() {
		reg, err := loadSchemas(fc.Schemas, doc.File)
		if err != nil {
			return nil, err
		}
		cfg.Schemas = reg
	}
	var sc dlqops.StoreConfig
	if !fc.Store.IsZero() {
		if err := fc.Store.Decode(&sc); err != nil {
			return nil, err
		}
		cfg.Shared["store"] = map[string]config.Raw{"": fc.Store}
	}
	// Validate every shared resource now, referenced or not.
	kinds := sharedKinds()
	for section, entries := range cfg.Shared {
		kind, ok := kinds[section]
		if !ok {
			continue
		}
		for _, name := range sortedKeys(entries) {
			if _, err := kind.decode(entries[name]); err != nil {
				return nil, err
			}
		}
	}
	byKey := map[string]Section{}
	var keys []string
	for _, s := range sections {
		byKey[s.Key] = s
		keys = append(keys, s.Key)
	}
	sort.Strings(keys)
	for _, name := range sortedKeys(fc.Handlers) {
		hc := &HandlerConfig{Name: name, raw: fc.Handlers[name]}
		for _, key := range sortedKeys(hc.raw) {
			raw := hc.raw[key]
			sec, ok := byKey[key]
			if !ok {
				return nil, &config.Error{File: doc.File, Line: raw.Line(), Path: "handlers." + name + "." + key,
					Err: fmt.Errorf("unknown key %q (known keys: %s)", key, strings.Join(keys, ", "))}
			}
			v, err := sec.decode(raw)
			if err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			if dc, ok := v.(dlq.Config); ok && dc.SharedAttempts() && sc.StoreKind() == dlqops.StoreKindMemory {
				return nil, &config.Error{File: doc.File, Line: childLine(raw, "attempts"), Path: "handlers." + name + "." + key + ".attempts",
					Err: fmt.Errorf("attempts: shared counts in the store section's backend; it needs `store: {kind: redis or postgres, ...}` (store kind is %s)", sc.StoreKind())}
			}
			if sec.ref != nil {
				if shared, ref, refKey := sec.ref(v); ref != "" {
					if _, ok := cfg.Shared[shared][ref]; !ok {
						defined := sortedKeys(cfg.Shared[shared])
						return nil, &config.Error{File: doc.File, Line: raw.Line(),
							Path: "handlers." + name + "." + key + "." + refKey,
							Err:  fmt.Errorf("%s %q is not defined under %s: (defined: %s)", shared, ref, shared, strings.Join(defined, ", "))}
					}
				}
			}
			if sec.Slot == SlotHandler {
				if hc.values == nil {
					hc.values = map[string]any{}
				}
				hc.values[key] = v
			}
			hc.parts = append(hc.parts, part{sec: sec, value: v})
		}
		sort.SliceStable(hc.parts, func(i, j int) bool { return hc.parts[i].sec.Slot < hc.parts[j].sec.Slot })
		cfg.Handlers[name] = hc
	}
	return cfg, nil
}

// childLine returns the line of key inside the mapping raw, or the
// section's line.
func childLine(raw config.Raw, key string) int {
	if n := raw.Node; n != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	return raw.Line()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HandlerNames returns the configured handler names, sorted.
func (c *Config) HandlerNames() []string { return sortedKeys(c.Handlers) }

// Describe returns every handler's resolved stack in canonical order.
func (c *Config) Describe() string {
	var b strings.Builder
	for _, name := range c.HandlerNames() {
		fmt.Fprintf(&b, "handler %s:\n", name)
		d := c.Handlers[name].Describe()
		if d == "" {
			d = "(no middleware)\n"
		}
		for _, line := range strings.SplitAfter(d, "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
		}
	}
	return b.String()
}

// Stack builds the configured handler's Stack. The returned closer releases
// what building created (shared resources are released by closeShared).
func (c *Config) stack(name string, deps Deps, shared func(section, name string) (any, error), instances map[string]any) (*Stack, []io.Closer, error) {
	hc, ok := c.Handlers[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: no handler %q in %s", ErrInvalidConfig, name, c.File)
	}
	s := NewStack()
	var closers []io.Closer
	type extra struct {
		mw    message.HandlerMiddleware
		label string
	}
	extras := map[Slot][]extra{}
	also := func(slot Slot, mw message.HandlerMiddleware, label string) {
		extras[slot] = append(extras[slot], extra{mw, label})
	}
	for _, p := range hc.parts {
		if p.sec.Slot == SlotHandler {
			continue
		}
		mw, closer, err := p.sec.build(p.value, BuildEnv{Handler: name, Deps: deps, Shared: shared, Schemas: c.Schemas, Also: also})
		if err != nil {
			for _, cl := range closers {
				_ = cl.Close()
			}
			return nil, nil, fmt.Errorf("%s: handlers.%s.%s: %w", c.File, name, p.sec.Key, err)
		}
		if ref, ok := closer.(sharedRef); ok {
			instances[name+"/"+p.sec.Key] = ref.v
		} else if closer != nil {
			instances[name+"/"+p.sec.Key] = closer
			closers = append(closers, closer)
		}
		s.SetLabeled(p.sec.Slot, mw, p.sec.label(p.value))
	}
	for slot, es := range extras {
		mws := make([]message.HandlerMiddleware, 0, len(es)+1)
		var labels []string
		for _, e := range es {
			mws = append(mws, e.mw)
			labels = append(labels, e.label)
		}
		if own := s.mws[slot]; own != nil {
			mws = append(mws, own)
			if s.labels[slot] != "" {
				labels = append(labels, s.labels[slot])
			}
		}
		s.SetLabeled(slot, Chain(mws...), strings.Join(labels, " + "))
	}
	return s, closers, nil
}

// errNoShared is returned for a reference to a shared resource that the
// file does not define.
var errNoShared = errors.New("no such shared resource")

// sharedRef is returned as the closer of a section that uses a shared
// resource: Applied.Instance finds the resource, and closing is left to
// the resource's owner.
type sharedRef struct{ v any }

func (sharedRef) Close() error { return nil }

// loadSchemas compiles the schemas section: topic -> JSON Schema file,
// relative paths resolved from the configuration file's folder.
func loadSchemas(raw config.Raw, file string) (*validate.Registry, error) {
	var m map[string]string
	if err := raw.Decode(&m); err != nil {
		return nil, err
	}
	dir := filepath.Dir(file)
	for topic, p := range m {
		if !filepath.IsAbs(p) {
			m[topic] = filepath.Join(dir, p)
		}
	}
	reg, err := validate.Load(m)
	if err != nil {
		return nil, raw.Errorf("%v", err)
	}
	return reg, nil
}
