package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// sectionDefaults is what each key of a section means when the file
// leaves it out, as `levee config check` prints it, keyed by the section
// key (a handler section, "schedulers", "breakers", "store") and then by
// the path inside the section. The values come from the concerns'
// exported defaults, so they cannot drift; TestEveryKeyHasADefault fails
// when a section gains a key without an entry here. A new section adds
// its map here (or none: its keys then print as "unset").
func sectionDefaults() map[string]map[string]string {
	b := dlq.DefaultBackoff()
	none := "none"
	breakerDefaults := map[string]string{
		"shared":               "none (own breaker)",
		"consecutive_failures": itoa(breaker.DefaultConsecutiveFailures) + " when no other trip policy is set",
		"failure_ratio":        "off",
		"min_requests":         itoa(breaker.DefaultMinRequests),
		"window":               dur(breaker.DefaultWindow),
		"open_for":             dur(breaker.DefaultOpenFor),
		"half_open_probes":     itoa(breaker.DefaultHalfOpenProbes),
		"slow_call":            "off",
		"slow_call.threshold":  "off",
		"slow_call.ratio":      "off",
		"max_hold":             "the transport's ack deadline (config.Deps.MaxHold), else none",
		"drain":                "off",
		"drain.window":         "required",
		"drain.start":          pct(breaker.DefaultDrainStart),
		"drain.aggression":     fmt.Sprint(breaker.DefaultDrainAggression),
		"drain.rate":           "the rate observed before the outage",
	}
	return map[string]map[string]string{
		"tracing": {"system": "the transport's (config.Deps.System)", "consumer_group": none, "propagators": "tracecontext, baggage"},
		"dlq": {
			"topic": "<subscribed topic>.dlq", "consumer_group": none,
			"max_hold":           "the transport's ack deadline (config.Deps.MaxHold), else none",
			"max_deferred":       "none (a message only ever deferred is never dead-lettered)",
			"retry.max_attempts": itoa(b.MaxAttempts), "retry.initial": dur(b.Initial), "retry.max": dur(b.Max),
			"retry.multiplier": fmt.Sprint(b.Multiplier), "retry.max_elapsed": none,
			"max_error_length": itoa(dlq.DefaultMaxErrorLength), "attempt_table_size": itoa(dlq.DefaultTableSize),
			"attempt_table_ttl": dur(dlq.DefaultTableTTL),
			"attempts":          dlq.AttemptsLocal, "attempt_ttl": dur(dlq.DefaultAttemptTTL),
		},
		"breaker":  breakerDefaults,
		"breakers": breakerDefaults,
		"priority": {"scheduler": "required", "default_priority": "the scheduler's"},
		"schedulers": {
			"slots": itoa(priority.DefaultSlots), "aging": dur(priority.DefaultAging),
			"max_waiting": itoa(priority.DefaultMaxWaiting), "max_wait": none,
			"max_hold":         "the transport's ack deadline (config.Deps.MaxHold), else none",
			"default_priority": itoa(priority.MinPriority), "retry_after": dur(priority.DefaultRetryAfter),
		},
		"ratelimit": {
			"rate": "none (no limit of its own)", "burst": "1", "mode": "wait", "max_wait": none,
			"max_hold": "the transport's ack deadline (config.Deps.MaxHold), else none",
			"catch_up": dur(ratelimit.DefaultCatchUp), "key": none, "key.metadata": none,
			"per_key": "off", "per_key.rate": "required", "per_key.burst": "1",
			"per_key.max_keys": itoa(ratelimit.DefaultMaxKeys), "per_key.idle": dur(ratelimit.DefaultKeyIdle),
			"per_key.overrides": none,
			"adaptive":          "off", "adaptive.min": "required", "adaptive.max": "required",
			"adaptive.target_latency": "automatic: latency_tolerance x the baseline (lowest recent window mean of successful calls) latency", "adaptive.latency_tolerance": fmt.Sprint(ratelimit.DefaultLatencyTolerance),
			"adaptive.ignore_latency": "false", "adaptive.max_error_rate": pct(ratelimit.DefaultMaxErrorRate),
			"adaptive.interval": dur(ratelimit.DefaultAdaptiveInterval), "adaptive.increase": "1% of max per interval",
			"adaptive.decrease": pct(ratelimit.DefaultDecrease), "adaptive.min_samples": itoa(ratelimit.DefaultMinSamples),
		},
		"batch": {
			"max_size": itoa(batch.DefaultMaxSize), "max_bytes": none, "max_wait": dur(batch.DefaultMaxWait),
			"max_in_flight": itoa(batch.DefaultMaxInFlight),
			"max_hold":      "the transport's ack deadline (config.Deps.MaxHold), else none",
		},
		"dedup": dedupDefaults(),
		"fleet": fleetDefaults(),
		"store": {
			"kind": dlqops.StoreKindMemory, "url": "required for postgres and redis", "schema": "levee (postgres)",
			"prefix": "levee (redis)", "retention.max_age": "none (keep)", "retention.max_count": "none",
			"replay_topics": "a letter from T.dlq goes back to T only", "timeout": dur(dlqops.DefaultStoreTimeout),
		},
	}
}

func itoa(i int) string          { return strconv.Itoa(i) }
func dur(d time.Duration) string { return d.String() }
func pct(f float64) string       { return strconv.FormatFloat(f*100, 'f', -1, 64) + "%" }
