package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"gopkg.in/yaml.v3"
)

// Transports a plan can name. amqp-quorum is RabbitMQ with quorum queues;
// kafka runs on an in-process Kafka-protocol broker.
var transportKinds = []string{"gochannel", "amqp", "amqp-quorum", "nats", "postgres", "kafka"}

// Fault kinds a plan can schedule.
const (
	// FaultOutage: the downstream fails every call (a transient error)
	// from Start for Duration.
	FaultOutage = "outage"
	// FaultLatency: every downstream call takes Delay longer (past the
	// handler timeout when Delay exceeds it).
	FaultLatency = "latency"
	// FaultOverload: the producer publishes as fast as it can (ignoring
	// the plan's rate), so the rate limiter and the scheduler shed.
	FaultOverload = "overload"
	// FaultStoreStall: every DLQ store write blocks until its deadline.
	FaultStoreStall = "store_stall"
	// FaultReplay: a dlqops.Replayer replays new dead letters every Every
	// (default 500ms), at most Burst per pass (default 100), each letter
	// at most MaxReplays times (default 1: the replayed message's own dead
	// letter is not replayed again).
	FaultReplay = "replay"
	// FaultBrokerRestart: the private broker (a nats-server or a RabbitMQ
	// node the run started) is stopped (Mode stop: SIGTERM, the default) or killed
	// (Mode kill: SIGKILL) at Start and started again after Duration.
	FaultBrokerRestart = "broker_restart"
	// FaultStoreRestart: the private DLQ store (a redis-server the run
	// started, with an fsync-always append-only file, or a PostgreSQL
	// postmaster: stop is a fast shutdown, SIGINT) is stopped or killed at
	// Start and started again after Duration.
	FaultStoreRestart = "store_restart"
	// FaultConsumerKill: the consumer process (ConsumerProcess) is killed
	// Count times (default 1) at seeded times between Start and
	// Start+Duration, with SIGKILL (Mode kill, the default) or SIGTERM
	// (Mode stop), and started again Delay later (default 200ms).
	FaultConsumerKill = "consumer_kill"
)

var faultKinds = []string{FaultOutage, FaultLatency, FaultOverload, FaultStoreStall, FaultReplay, FaultBrokerRestart,
	FaultStoreRestart, FaultConsumerKill}

// Fault is one scheduled fault. Start is from the beginning of the run.
type Fault struct {
	Kind     string        `yaml:"kind"`
	Start    time.Duration `yaml:"start"`
	Duration time.Duration `yaml:"duration"`
	Delay    time.Duration `yaml:"delay"`
	Every    time.Duration `yaml:"every"`
	Burst    int           `yaml:"burst"`
	Mode     string        `yaml:"mode"`
	// MaxReplays bounds the generations of a replay fault (default 1).
	MaxReplays int `yaml:"max_replays"`
	// Count is how many times a consumer_kill fault kills the consumer.
	Count int `yaml:"count"`
}

// End returns Start+Duration.
func (f Fault) End() time.Duration { return f.Start + f.Duration }

// Plan is a seeded chaos run: what to send, over what, and which faults
// to inject when. The same plan and seed send the same messages with the
// same fates and schedule the same faults.
type Plan struct {
	// File is the path the plan was read from ("" when parsed from bytes).
	File string `yaml:"-"`
	// Seed drives every random choice of the run (fates, priorities,
	// batch topic); default 1.
	Seed uint64 `yaml:"seed"`
	// Messages is how many messages the producer sends.
	Messages int `yaml:"messages"`
	// Rate is the producer's pace in messages per second; 0 means as fast
	// as it can.
	Rate float64 `yaml:"rate"`
	// Transport: gochannel (default), amqp, amqp-quorum, nats, postgres or
	// kafka (in process). Servers are the loopback ones of DESIGN.md,
	// unless PrivateBroker.
	Transport string `yaml:"transport"`
	// PrivateBroker starts a private broker for the run (nats: a
	// nats-server on its own port and store folder; amqp and amqp-quorum:
	// a RabbitMQ node with its own name, ports and data folder), which
	// broker_restart faults stop and kill.
	PrivateBroker bool `yaml:"private_broker"`
	// Concurrency is the transport's messages in flight per topic
	// (default: 256 for gochannel, 32 otherwise, 4 for postgres).
	Concurrency int `yaml:"concurrency"`
	// Store is the DLQ store: memory (default), redis or postgres on
	// loopback.
	Store string `yaml:"store"`
	// PrivateStore starts a private server for the store (store redis: a
	// redis-server; store postgres: a PostgreSQL cluster initialised for
	// the run), which store_restart faults stop and kill.
	PrivateStore bool `yaml:"private_store"`
	// Stack is the Levee configuration file (relative to the plan's
	// folder) that configures handlers "chaos" and "chaos-batch".
	Stack string `yaml:"stack"`
	// Fates is the share of each fate (healthy, transient, poison,
	// permanent, validation, panic, forged).
	Fates map[string]float64 `yaml:"fates"`
	// BatchShare is the share of messages sent to the batch handler's
	// topic (panic fates there become permanent: the batcher re-runs a
	// panicking batch in halves to isolate the panic, so a panic is no
	// one-call fate there).
	BatchShare float64 `yaml:"batch_share"`
	// OrderKeys > 0 checks order per key (message i has key i % OrderKeys)
	// where the transport promises it.
	OrderKeys int `yaml:"order_keys"`
	// Grace is how long the run keeps consuming after every message
	// settled, to catch late duplicates (default 1s).
	Grace time.Duration `yaml:"grace"`
	// MaxRun bounds the run (default 10m): what has not settled by then
	// is reported lost.
	MaxRun time.Duration `yaml:"max_run"`
	// ConsumerProcess runs the handlers "chaos" and "chaos-batch" in a
	// separate OS process (this program started again, see ConsumerMain)
	// that records its events in an append-only file per process, which
	// consumer_kill faults SIGKILL and restart. Not for gochannel.
	ConsumerProcess bool `yaml:"consumer_process"`
	// AckDeadline is the transport's ack deadline (JetStream AckWait:
	// how soon a killed consumer's unacked messages are redelivered);
	// default 30s.
	AckDeadline time.Duration `yaml:"ack_deadline"`
	// Warmup is how long the run waits after its consumers started before
	// the first publish (default 0): over Kafka, until the consumer
	// group's rebalances ended (docs/RELIABILITY.md, observations).
	Warmup time.Duration `yaml:"warmup"`
	// Dedup: the plain handler's success commits a side effect (a row in
	// a table of the run on the loopback PostgreSQL) in one transaction
	// with the done mark of the PostgreSQL inbox (adapters/pgdedup), which
	// is the stack's dedup store (Deps.DedupStore: the stack file needs a
	// dedup section with store: shared on handler "chaos"). The checker
	// then counts duplicated side effects. Needs batch_share 0.
	Dedup bool `yaml:"dedup"`
	// Faults are the scheduled faults.
	Faults []Fault `yaml:"faults"`
}

// LoadPlan reads and validates a plan file.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	p, err := ParsePlan(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.File = path
	return p, nil
}

// ParsePlan parses and validates a plan; unknown keys are errors.
func ParsePlan(data []byte) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &Plan{}
	if err := dec.Decode(p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks the plan and fills in defaults.
func (p *Plan) Validate() error {
	bad := badPlan
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Messages <= 0 {
		return bad("messages must be > 0 (have %d)", p.Messages)
	}
	if p.Rate < 0 {
		return bad("rate must be >= 0")
	}
	if p.Transport == "" {
		p.Transport = "gochannel"
	}
	if !contains(transportKinds, p.Transport) {
		return bad("transport %q: want one of %v", p.Transport, transportKinds)
	}
	if p.PrivateBroker && !contains([]string{"nats", "amqp", "amqp-quorum"}, p.Transport) {
		return bad("private_broker is supported for transports nats, amqp and amqp-quorum (have %s)", p.Transport)
	}
	if p.Store == "" {
		p.Store = "memory"
	}
	if !contains([]string{"memory", "redis", "postgres"}, p.Store) {
		return bad("store %q: want memory, redis or postgres", p.Store)
	}
	if p.PrivateStore && p.Store != "redis" && p.Store != "postgres" {
		return bad("private_store is supported for stores redis and postgres (have %s)", p.Store)
	}
	if p.Stack == "" {
		return bad("stack (the Levee configuration file) is required")
	}
	if len(p.Fates) == 0 {
		return bad("fates is required")
	}
	for name := range p.Fates {
		if _, err := ParseKind(name); err != nil {
			return err
		}
	}
	if p.BatchShare < 0 || p.BatchShare > 1 {
		return bad("batch_share must be in [0,1]")
	}
	if p.OrderKeys < 0 || p.Concurrency < 0 || p.AckDeadline < 0 || p.Warmup < 0 {
		return bad("order_keys, concurrency, ack_deadline and warmup must be >= 0")
	}
	if p.OrderKeys > 0 && p.BatchShare > 0 {
		return bad("order_keys needs batch_share 0 (the batch topic is another stream, and a batch runs its messages together)")
	}
	if p.Dedup && p.BatchShare > 0 {
		return bad("dedup needs batch_share 0 (the side effect is the plain handler's)")
	}
	if p.AckDeadline == 0 {
		p.AckDeadline = 30 * time.Second
	}
	if p.ConsumerProcess && p.Transport == "gochannel" {
		return bad("consumer_process needs a broker (gochannel lives in one process)")
	}
	if p.Grace == 0 {
		p.Grace = time.Second
	}
	if p.MaxRun == 0 {
		p.MaxRun = 10 * time.Minute
	}
	for i := range p.Faults {
		if err := p.Faults[i].validate(i, p.PrivateBroker, p.PrivateStore); err != nil {
			return err
		}
		if p.Faults[i].Kind == FaultConsumerKill && !p.ConsumerProcess {
			return bad("faults[%d] (consumer_kill) needs consumer_process: true", i)
		}
	}
	return nil
}

// validate checks fault i of a plan and fills in its defaults; the
// restart faults need the plan's private broker or store.
func (f *Fault) validate(i int, privateBroker, privateStore bool) error {
	bad := badPlan
	if !contains(faultKinds, f.Kind) {
		return bad("faults[%d]: kind %q: want one of %v", i, f.Kind, faultKinds)
	}
	if f.Start < 0 || f.Duration <= 0 {
		return bad("faults[%d] (%s): start must be >= 0 and duration > 0", i, f.Kind)
	}
	switch f.Kind {
	case FaultLatency:
		if f.Delay <= 0 {
			return bad("faults[%d] (latency): delay must be > 0", i)
		}
	case FaultReplay:
		if f.Every == 0 {
			f.Every = 500 * time.Millisecond
		}
		if f.Burst == 0 {
			f.Burst = 100
		}
		if f.MaxReplays == 0 {
			f.MaxReplays = 1
		}
		if f.MaxReplays < 0 || f.MaxReplays > dlqops.DefaultMaxReplays {
			return bad("faults[%d] (replay): max_replays must be in 1..%d", i, dlqops.DefaultMaxReplays)
		}
	case FaultConsumerKill:
		if f.Mode == "" {
			f.Mode = "kill"
		}
		if f.Count == 0 {
			f.Count = 1
		}
		if f.Delay == 0 {
			f.Delay = 200 * time.Millisecond
		}
		if f.Mode != "stop" && f.Mode != "kill" {
			return bad("faults[%d] (%s): mode %q: want stop or kill", i, f.Kind, f.Mode)
		}
		if f.Count < 0 || f.Delay < 0 {
			return bad("faults[%d] (%s): count and delay must be >= 0", i, f.Kind)
		}
	case FaultBrokerRestart, FaultStoreRestart:
		if f.Kind == FaultBrokerRestart && !privateBroker {
			return bad("faults[%d] (broker_restart) needs private_broker: true (the shared broker is never restarted)", i)
		}
		if f.Kind == FaultStoreRestart && !privateStore {
			return bad("faults[%d] (store_restart) needs private_store: true (the shared store is never restarted)", i)
		}
		if f.Mode == "" {
			f.Mode = "stop"
		}
		if f.Mode != "stop" && f.Mode != "kill" {
			return bad("faults[%d] (%s): mode %q: want stop or kill", i, f.Kind, f.Mode)
		}
	}
	return nil
}

// badPlan returns an error wrapping ErrPlan.
func badPlan(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
}

// Mix returns the plan's fate mix.
func (p *Plan) Mix() Mix {
	m := Mix{}
	for name, share := range p.Fates {
		k, _ := ParseKind(name)
		m[k] = share
	}
	return m
}

// StackPath returns the stack file's path, relative to the plan's folder.
func (p *Plan) StackPath() string {
	if filepath.IsAbs(p.Stack) || p.File == "" {
		return p.Stack
	}
	return filepath.Join(filepath.Dir(p.File), p.Stack)
}

// active returns the faults of kind active at t (from the run's start).
func (p *Plan) active(kind string, t time.Duration) (Fault, bool) {
	for _, f := range p.Faults {
		if f.Kind == kind && t >= f.Start && t < f.End() {
			return f, true
		}
	}
	return Fault{}, false
}

// lastFaultEnd returns when the last fault ends.
func (p *Plan) lastFaultEnd() time.Duration {
	var end time.Duration
	for _, f := range p.Faults {
		end = max(end, f.End())
	}
	return end
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
