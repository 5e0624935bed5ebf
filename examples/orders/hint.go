package main

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/redact"
)

// storeHint tells how to read a shared store's letters with `levee dlq`:
// the store section to give it and, when the run's topics are kept on a
// broker (-keep), the transport section a replay publishes through; else
// why they cannot be replayed (topics removed at the end, or gone with an
// in-process transport). "" for the memory store, gone with the process.
func storeHint(sc dlqops.StoreConfig, tc adapters.TransportConfig, keep bool) string {
	var where string
	switch sc.StoreKind() {
	case dlqops.StoreKindRedis:
		where = fmt.Sprintf("prefix: %s", cmp.Or(sc.Prefix, "levee"))
	case dlqops.StoreKindPostgres:
		where = fmt.Sprintf("schema: %s", cmp.Or(sc.Schema, "levee"))
	default:
		return ""
	}
	store := fmt.Sprintf("  store: {kind: %s, url: %q, %s}\n", sc.StoreKind(), redact.URL(sc.URL), where)
	transport, hidden := transportLine(tc)
	switch {
	case transport == "":
		return "\nthe letters stay in the store; read them with `levee dlq --config FILE groups`, FILE holding\n" + store +
			"this run's topics were in process (" + cmp.Or(tc.Kind, adapters.KindGoChannel) +
			"): its letters can be read, not replayed; run over a broker (-transport) with -keep to replay\n"
	case !keep:
		return "\nthe letters stay in the store; read them with `levee dlq --config FILE groups`, FILE holding\n" + store +
			"replaying them publishes to this run's topics, removed at its end: run with -keep to replay\n"
	}
	s := "\nthe letters stay in the store; read and replay them with `levee dlq --config FILE groups` (then replay),\nFILE holding\n" +
		transport + store
	if hidden {
		s += "(with the password, hidden here, in place of " + redact.Mask + ")\n"
	}
	return s
}

// transportLine is tc as the one-line transport section `levee dlq
// replay` needs to publish to the run's topics, and whether a password
// was hidden from it; "" for a transport in process (GoChannel, the
// demo's own Kafka cluster), which no other process can publish to.
func transportLine(tc adapters.TransportConfig) (line string, hidden bool) {
	url := func(u string) string {
		r := redact.URL(u)
		hidden = hidden || r != u
		return strconv.Quote(r)
	}
	var sub string
	switch tc.Kind {
	case "amqp":
		if tc.AMQP == nil {
			return "", false
		}
		sub = "amqp: {url: " + url(tc.AMQP.URL)
		if tc.AMQP.MaxPriority != nil { // a queue's arguments must match: PRECONDITION_FAILED otherwise
			sub += fmt.Sprintf(", max_priority: %d", *tc.AMQP.MaxPriority)
		}
		if tc.AMQP.QueueType != "" {
			sub += ", queue_type: " + tc.AMQP.QueueType
		}
		sub += "}"
	case "kafka":
		if tc.Kafka == nil || len(tc.Kafka.Brokers) == 0 {
			return "", false
		}
		sub = fmt.Sprintf("kafka: {brokers: [%s]}", strings.Join(tc.Kafka.Brokers, ", "))
	case "nats":
		if tc.NATS == nil {
			return "", false
		}
		sub = "nats: {url: " + url(tc.NATS.URL) + "}"
	case "redis":
		if tc.Redis == nil {
			return "", false
		}
		sub = fmt.Sprintf("redis: {addr: %q, db: %d}", tc.Redis.Addr, tc.Redis.DB)
		if tc.Redis.Username != "" || tc.Redis.Password != "" {
			hidden = true
			sub = fmt.Sprintf("redis: {addr: %q, db: %d, username: %q, password: %q}", tc.Redis.Addr, tc.Redis.DB, tc.Redis.Username, redact.Mask)
		}
	case "postgres":
		if tc.Postgres == nil {
			return "", false
		}
		sub = "postgres: {url: " + url(tc.Postgres.URL) + "}"
	default:
		return "", false
	}
	if tc.ConsumerGroup != "" {
		sub = "consumer_group: " + strconv.Quote(tc.ConsumerGroup) + ", " + sub
	}
	return "  transport: {kind: " + tc.Kind + ", " + sub + "}\n", hidden
}
