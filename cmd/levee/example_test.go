package main

import "os"

func Example_configCheck() {
	run([]string{"config", "check", "testdata/levee.yaml"}, os.Stdout, os.Stdout)
	// Output:
	// testdata/levee.yaml: ok
	// handler audit:
	//   1. recover
	// handler payments:
	//   1. recover
	//   2. timeout 2s
	// settings (effective value, source):
	//   transport.kind             gochannel                                default
	//   transport.concurrency      1                                        default
	//   transport.consumer_group   levee (amqp: none, one queue per topic)  default
	//   transport.ack_deadline     none (kafka, gochannel)                  default
	//   transport.dial_timeout     5s                                       default
	//   handlers.audit.recover     true                                     testdata/levee.yaml:6
	//   handlers.payments.recover  true                                     testdata/levee.yaml:4
	//   handlers.payments.timeout  2s                                       testdata/levee.yaml:3
}
