package main

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// TestREADMECountsMatchTheDemo fails when a count the README states about
// the demo drifts from what the demo does with its default flags and the
// shipped levee.yaml: the orders it publishes (what its report's first
// line counts), the VIP, over-limit, bad-phone and malformed ones, its
// handlers, the SMS limits, the gateway's slots and the topics it removes.
func TestREADMECountsMatchTheDemo(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	find := func(re string) []int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("README no longer says %q: update this test with it", re)
		}
		var out []int
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			out = append(out, n)
		}
		return out
	}
	words := map[string]int{"two": 2, "three": 3, "four": 4, "five": 5}
	handlersWord := regexp.MustCompile(`through (\w+) handlers \(payments`).FindStringSubmatch(text)
	if handlersWord == nil {
		t.Fatal(`README no longer says "through N handlers (payments"`)
	}

	o, err := parseFlags(flag.NewFlagSet("orders", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := makeOrders(o)
	var vip, big, badPhone int
	for _, m := range msgs {
		var ord Order
		if json.Unmarshal(m.Payload, &ord) != nil || len(ord.Items) == 0 || ord.Amount <= 0 {
			continue
		}
		if p, ok := priority.Parse(m.Metadata.Get(levee.KeyPriority)); ok && p == priority.MaxPriority {
			vip++
		}
		if ord.Amount > o.limit {
			big++
		}
		if !strings.HasPrefix(ord.Phone, "+") {
			badPhone++
		}
	}
	cfg, err := config.Load("levee.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sms, _ := config.Value[ratelimit.Config](cfg.Handler("sms"), "ratelimit")
	var slots int
	for _, s := range cfg.Settings() {
		if s.Path == "schedulers.gateway.slots" {
			slots, _ = strconv.Atoi(s.Value)
		}
	}

	got := find(`publishes (\d+) orders, (\d+) well-formed \((\d+)% VIP, (\d+) over the payment gateway's limit, (\d+) with an invalid phone number\) and (\d+) malformed`)
	checks := []struct {
		what         string
		readme, demo int
	}{
		{"orders published (the report's first line)", got[0], len(msgs)},
		{"well-formed orders", got[1], o.orders},
		{"VIP share (%)", got[2], vip * 100 / o.orders},
		{"orders over the gateway limit", got[3], big},
		{"orders with a bad phone", got[4], badPhone},
		{"malformed orders", got[5], len(msgs) - o.orders},
		{"handlers", words[handlersWord[1]], len(handlerNames)},
		{"handlers in levee.yaml", words[handlersWord[1]], len(cfg.HandlerNames())},
		{"gateway slots", find(`the gateway \((\d+) shared slots\)`)[0], slots},
		{"SMS rate (/s)", find(`\(limited to (\d+)/s, (\d+)/s per customer\)`)[0], int(*sms.Rate)},
		{"SMS rate per customer (/s)", find(`\(limited to (\d+)/s, (\d+)/s per customer\)`)[1], int(sms.PerKey.Rate)},
		{"topics removed", find(`\(its (\d+) topics and their (\d+) dead-letter topics\)`)[0], len(flowTopicsOf(topicNames{}).all())},
		{"dead-letter topics removed", find(`\(its (\d+) topics and their (\d+) dead-letter topics\)`)[1], len(flowTopicsOf(topicNames{}).all())},
	}
	for _, c := range checks {
		if c.readme != c.demo {
			t.Errorf("README says %d %s, the demo has %d", c.readme, c.what, c.demo)
		}
	}
}
