package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// leakyPasswords break url.Parse (%zz, /, #, ?), make it misplace the
// password (digits then '/': the password parses as a port), or are split
// differently by different clients (@). Each contains "Sekr", which must
// appear in no output.
var leakyPasswords = []string{"Sekr%zzit", "Sekr/it", "Sekr#it", "Sekr@it", "Sekr%zz/#@it", "31337/Sekrit", "Sekr?it"}

// credentialKey is a config key that can carry a credential. yaml is the
// levee.yaml line with the credential P in it; transport or store build
// the same section directly (as a program that skips the loader would).
// All point at 127.0.0.1:1, where nothing listens.
type credentialKey struct {
	key, yaml string
	transport func(p string) adapters.TransportConfig
	store     func(p string) dlqops.StoreConfig
}

func credentialKeys() []credentialKey {
	const user = "levee_user"
	return []credentialKey{
		{key: "transport.amqp.url", yaml: `transport: {kind: amqp, amqp: {url: "amqp://` + user + `:P@127.0.0.1:1/"}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "amqp", AMQP: &adapters.AMQPConfig{URL: "amqp://" + user + ":" + p + "@127.0.0.1:1/"}}
			}},
		{key: "transport.nats.url", yaml: `transport: {kind: nats, nats: {url: "nats://` + user + `:P@127.0.0.1:1"}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "nats", NATS: &adapters.NATSConfig{URL: "nats://" + user + ":" + p + "@127.0.0.1:1"}}
			}},
		{key: "transport.postgres.url", yaml: `transport: {kind: postgres, postgres: {url: "postgres://` + user + `:P@127.0.0.1:1/test"}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "postgres://" + user + ":" + p + "@127.0.0.1:1/test"}}
			}},
		{key: "transport.postgres.url (dsn)", yaml: `transport: {kind: postgres, postgres: {url: "host=127.0.0.1 port=1 user=` + user + ` password='P' dbname=test"}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "postgres", Postgres: &adapters.PostgresConfig{URL: "host=127.0.0.1 port=1 user=" + user + " password='" + p + "' dbname=test"}}
			}},
		{key: "transport.redis.password", yaml: `transport: {kind: redis, redis: {addr: "127.0.0.1:1", username: ` + user + `, password: "P"}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "redis", Redis: &adapters.RedisConfig{Addr: "127.0.0.1:1", Username: user, Password: p}}
			}},
		{key: "transport.kafka.brokers", yaml: `transport: {kind: kafka, kafka: {brokers: ["` + user + `:P@127.0.0.1:1"]}}`,
			transport: func(p string) adapters.TransportConfig {
				return adapters.TransportConfig{Kind: "kafka", Kafka: &adapters.KafkaConfig{Brokers: []string{user + ":" + p + "@127.0.0.1:1"}}}
			}},
		{key: "store.url (postgres)", yaml: `store: {kind: postgres, url: "postgres://` + user + `:P@127.0.0.1:1/test"}`,
			store: func(p string) dlqops.StoreConfig {
				return dlqops.StoreConfig{Kind: "postgres", URL: "postgres://" + user + ":" + p + "@127.0.0.1:1/test"}
			}},
		{key: "store.url (postgres dsn)", yaml: `store: {kind: postgres, url: "host=127.0.0.1 port=1 user=` + user + ` password='P' dbname=test"}`,
			store: func(p string) dlqops.StoreConfig {
				return dlqops.StoreConfig{Kind: "postgres", URL: "host=127.0.0.1 port=1 user=" + user + " password='" + p + "' dbname=test"}
			}},
		{key: "store.url (redis)", yaml: `store: {kind: redis, url: "redis://` + user + `:P@127.0.0.1:1/0"}`,
			store: func(p string) dlqops.StoreConfig {
				return dlqops.StoreConfig{Kind: "redis", URL: "redis://" + user + ":" + p + "@127.0.0.1:1/0"}
			}},
	}
}

// TestNoErrorPrintsACredential feeds every credential-bearing key each
// leaky password, as written and percent-encoded (a valid URL whose
// server does not answer), and checks what config loading, `levee config
// check`, `levee dlq` and adapters.Build / dlqstore.FromConfig print.
func TestNoErrorPrintsACredential(t *testing.T) {
	for _, k := range credentialKeys() {
		for i, pw := range leakyPasswords {
			for _, encoded := range []bool{false, true} {
				p := pw
				if encoded {
					if !strings.Contains(k.yaml, "://") {
						continue
					}
					p = url.PathEscape(pw)
					p = strings.ReplaceAll(strings.ReplaceAll(p, "@", "%40"), ":", "%3A")
				}
				// The subtest name is in t.TempDir's path: keep the password out.
				t.Run(fmt.Sprintf("%s/password%d/encoded=%v", k.key, i, encoded), func(t *testing.T) {
					checkNoCredential(t, k, p)
				})
			}
		}
	}
}

func checkNoCredential(t *testing.T, k credentialKey, p string) {
	body := strings.Replace(k.yaml, "P@", p+"@", 1)
	body = strings.Replace(body, "password: \"P\"", "password: \""+p+"\"", 1)
	body = strings.Replace(body, "password='P'", "password='"+p+"'", 1) + "\n"
	if !strings.Contains(body, p) {
		t.Fatalf("test bug: %q not in %q", p, body)
	}
	if k.transport != nil {
		body += "store: {kind: postgres, url: \"postgres://postgres@127.0.0.1:1/test\"}\n"
	}
	path := dlqWriteConfig(t, body)
	check := func(what, s string) {
		t.Helper()
		if strings.Contains(s, "Sekr") {
			t.Errorf("%s shows the password:\n%s", what, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err := config.Load(path)
	check("LoadConfig", fmt.Sprint(err))

	var out, errb bytes.Buffer
	run([]string{"config", "check", path}, &out, &errb)
	check("levee config check", out.String()+errb.String())

	out.Reset()
	errb.Reset()
	if k.store != nil {
		if code := runDLQ([]string{"--config", path, "groups"}, &out, &errb); code == 0 {
			t.Error("levee dlq groups: exit 0 against an unreachable store")
		}
		check("levee dlq groups", out.String()+errb.String())
		_, _, err := dlqstore.FromConfig(ctx, k.store(p))
		if err == nil {
			t.Fatal("dlqstore.FromConfig: no error")
		}
		check("dlqstore.FromConfig", err.Error())
		return
	}
	cmd, _, _, _, _ := dlqTestCmd(t)
	cmd.stdout, cmd.stderr = &out, &errb
	cmd.openPublisher = openTransportPublisher
	cmd.configPath = path
	if code := cmd.run(ctx, []string{"replay", "--all", "--rate", "0"}); code != 1 {
		t.Errorf("levee dlq replay: exit %d against an unreachable broker, want 1\n%s", code, errb.String())
	}
	check("levee dlq replay", out.String()+errb.String())
	tr, err := adapters.Build(ctx, k.transport(p), nil)
	if err == nil {
		_ = tr.Close()
		t.Fatal("adapters.Build: no error")
	}
	check("adapters.Build", err.Error())
}
