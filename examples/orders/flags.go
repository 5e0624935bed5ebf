package main

import (
	"flag"
	"fmt"
	"time"
)

// options are the demo's command-line flags.
type options struct {
	keep        bool // keep the run's topics on the broker
	orders      int
	vipShare    float64
	malformed   int
	badPhones   int
	outage      time.Duration
	outageAfter time.Duration
	transient   float64
	service     time.Duration
	configPath  string
	postgres    string
	metrics     string
	traces      bool
	linger      time.Duration
	maxRun      time.Duration
	rate        float64
	seed        uint64
	limit       int
	big         int
	replayFixed bool
	duplicates  int
	transport   string
	store       string
	storePrefix string
	fleet       string
}

// parseFlags registers the demo's flags on fs, parses args and returns
// the options.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.IntVar(&o.orders, "orders", 300, "number of orders to publish")
	fs.Float64Var(&o.rate, "rate", 200, "order intake rate in orders per second (0: publish all at once)")
	fs.Float64Var(&o.vipShare, "vip", 0.1, "share of VIP orders (0..1), published with levee_priority 9")
	fs.IntVar(&o.malformed, "malformed", 5, "number of extra malformed orders (dead-lettered by payments, class validation)")
	fs.IntVar(&o.badPhones, "bad-phones", 4, "number of orders whose phone number is invalid (their SMS is dead-lettered)")
	fs.DurationVar(&o.outage, "outage", 0, "payment gateway outage length (e.g. 5s)")
	fs.DurationVar(&o.outageAfter, "outage-after", 500*time.Millisecond, "when the outage starts, after the gateway's first call")
	fs.Float64Var(&o.transient, "transient", 0.05, "share of payment calls failing transiently (0..1); they are retried")
	fs.DurationVar(&o.service, "service", 10*time.Millisecond, "payment gateway service time per call")
	fs.StringVar(&o.transport, "transport", "", "run over gochannel, amqp, kafka (in-process), nats, redis or postgres on loopback (default: levee.yaml's transport, gochannel)")
	fs.StringVar(&o.store, "store", "", "record dead letters in a memory, redis or postgres store on loopback (default: levee.yaml's store section, memory)")
	fs.StringVar(&o.storePrefix, "store-prefix", "levee_orders", "with -store redis the key prefix, with -store postgres the schema")
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL URL: write batched inventory rows there (default: in memory)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9464) at /metrics")
	fs.BoolVar(&o.traces, "traces", false, "write spans to stdout (OTLP instead when OTEL_EXPORTER_OTLP_ENDPOINT is set)")
	fs.DurationVar(&o.linger, "linger", 0, "keep serving /metrics this long after the run (for a scrape)")
	fs.StringVar(&o.configPath, "config", "", "levee.yaml to use (default: the embedded examples/orders/levee.yaml)")
	fs.DurationVar(&o.maxRun, "max-run", 2*time.Minute, "give up (exit 1) if the run has not settled by then")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.limit, "gateway-limit", 200000, "largest amount in cents the gateway accepts (0: no limit)")
	fs.IntVar(&o.big, "big-orders", 6, "number of orders over the gateway limit (dead-lettered, class permanent)")
	fs.BoolVar(&o.keep, "keep", false, "keep this run's queues, streams or tables on the broker (default: removed at the end)")
	fs.BoolVar(&o.replayFixed, "replay-fixed", false, "after the run, lift the gateway limit and replay the over-limit dead letters")
	fs.IntVar(&o.duplicates, "duplicates", 10, "publish every Nth reserve request twice, with a new UUID (inventory's dedup drops the copy; 0: never)")
	fs.StringVar(&o.fleet, "fleet", "", "run 3 replicas of payments against one fleet limit on this Redis (e.g. redis://127.0.0.1:6379/0) and exit (docs/FLEET.md)")
	err := fs.Parse(args)
	return o, err
}

// validate rejects counts and shares out of range.
func (o options) validate() error {
	if o.orders < 0 || o.malformed < 0 || o.badPhones < 0 || o.badPhones > o.orders || o.big < 0 || o.big > o.orders || o.limit < 0 || o.duplicates < 0 ||
		o.vipShare < 0 || o.vipShare > 1 || o.transient < 0 || o.transient >= 1 {
		return fmt.Errorf("invalid flags: -orders, -malformed, -bad-phones must be >= 0 (bad phones <= orders), -vip in [0,1], -transient in [0,1)")
	}
	return nil
}
