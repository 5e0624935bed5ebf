// Command chaos runs a chaos plan against Levee's canonical stack and
// prints the checker's table, the deliveries per message, the time and a
// per-fault timeline. It exits 1 when a message was lost or unexpected, a
// healthy message was dead-lettered, a poison message was not
// dead-lettered once with the right attempts and class, or the run did not
// settle; 2 on a usage or setup error.
//
//	go run ./chaos/cmd/chaos --plan chaos/plans/ci.yaml
//	go run ./chaos/cmd/chaos --plan chaos/plans/ci.yaml --transport amqp --messages 10000 --seed 7
//	go run ./chaos/cmd/chaos --plan chaos/plans/consumer-kill.yaml
//
// A plan with consumer_process: true starts this program again as its
// consumer process (chaos.ConsumerMain), which the plan's consumer_kill
// faults SIGKILL and restart.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/levee-dev/levee/chaos"
)

func main() {
	chaos.ConsumerMain() // a plan's consumer process is this program started again
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	planPath := fs.String("plan", "", "the plan file (YAML), required")
	transport := fs.String("transport", "", "override the plan's transport (gochannel, amqp, amqp-quorum, nats, postgres, kafka)")
	store := fs.String("store", "", "override the plan's DLQ store (memory, redis, postgres)")
	messages := fs.Int("messages", 0, "override the plan's message count")
	seed := fs.Uint64("seed", 0, "override the plan's seed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *planPath == "" {
		fmt.Fprintln(stderr, "chaos: --plan is required")
		fs.Usage()
		return 2
	}
	p, err := chaos.LoadPlan(*planPath)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	if *transport != "" {
		p.Transport = *transport
	}
	if *store != "" {
		p.Store = *store
	}
	if *messages > 0 {
		p.Messages = *messages
	}
	if *seed > 0 {
		p.Seed = *seed
	}
	if err := p.Validate(); err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, p, stderr)
	if res != nil {
		res.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	if res.Failed() {
		return 1
	}
	return 0
}
