package service

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
)

// checkHandlers rejects what the file and the registered handlers cannot
// mean together, which neither config.Load (the file knows no topics) nor
// config.Apply (the router tells no topics) can see:
//   - a handler whose dead-letter topic is the topic it consumes: every
//     dead letter would come back to it (and the dead-letter monitor would
//     compete with it for its messages);
//   - a batch section on a handler registered with Handle, which would be
//     ignored: HandleBatch is what reads it;
//   - a topic the transport cannot carry (over PostgreSQL, one longer than
//     postgres.MaxTopicLen): a consumed topic would fail the router's
//     start, and a dead-letter topic every dead letter, each Nacked and
//     redelivered without end;
//   - two consumers of one topic (two handlers, or a handler and the
//     dead-letter monitor on a dead-letter topic) over a broker: they
//     share the transport's one consumer group, so each would get only
//     some of the topic's messages (GoChannel alone gives each all).
//
// Each error wraps config.ErrInvalidConfig and names the file's line.
func (s *Service) checkHandlers(applied *config.Applied) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	consumers := map[string][]string{} // topic -> what consumes it
	for _, name := range slices.Sorted(maps.Keys(s.handlers)) {
		topic := s.topics[name]
		consumers[topic] = append(consumers[topic], fmt.Sprintf("handler %q", name))
		r, hasDLQ := applied.Retrier(name)
		dlqTopic := ""
		if hasDLQ {
			dlqTopic = r.Topic(topic)
		}
		if s.WatchDeadLetters && dlqTopic != "" && dlqTopic != topic && !slices.Contains(consumers[dlqTopic], monitor) {
			consumers[dlqTopic] = append(consumers[dlqTopic], monitor)
		}
		errs = append(errs, s.checkTopics(name, topic, dlqTopic)...)
		if hasDLQ && dlqTopic == topic {
			errs = append(errs, fmt.Errorf("%w: %shandlers.%s.dlq.topic: %q is the topic handler %q consumes: its dead letters would come back to it; "+
				"name another topic, or remove the key for the default %q", config.ErrInvalidConfig, s.where("handlers."+name+".dlq"), name, topic, name, topic+".dlq"))
		}
		if _, isBatch := s.handlers[name].(batch.Func); !isBatch {
			if _, ok := s.Config.Handler(name).Batch(); ok {
				errs = append(errs, fmt.Errorf("%w: %shandlers.%s.batch: handler %q is registered with Handle, which takes one message at a time and would ignore its batch section; "+
					"register it with HandleBatch, or remove the section", config.ErrInvalidConfig, s.where("handlers."+name+".batch"), name, name))
			}
		}
	}
	if kind := s.Transport.Capabilities.Kind; kind != "gochannel" {
		for _, topic := range slices.Sorted(maps.Keys(consumers)) {
			if c := consumers[topic]; len(c) > 1 {
				way := "give each its own topic, or run each in a service of its own with a distinct transport.consumer_group"
				if slices.Contains(c, monitor) {
					way += ", or set WatchDeadLetters to false when the handler records the letters"
				}
				errs = append(errs, fmt.Errorf("%w: %s consume topic %q: over %s they share the transport's consumer group (transport.consumer_group), "+
					"so each would get only some of its messages; %s", config.ErrInvalidConfig, strings.Join(c, " and "), topic, kind, way))
			}
		}
	}
	return errors.Join(errs...)
}

// checkTopics returns an error for each of handler name's topics (the one
// it consumes, and its dead-letter topic when it has one) that the
// transport cannot carry.
func (s *Service) checkTopics(name, topic, dlqTopic string) []error {
	var errs []error
	if err := s.Transport.CheckTopic(topic); err != nil {
		errs = append(errs, fmt.Errorf("%w: handler %q consumes topic %q: %w", config.ErrInvalidConfig, name, topic, err))
	}
	if dlqTopic == "" {
		return errs
	}
	if err := s.Transport.CheckTopic(dlqTopic); err != nil {
		errs = append(errs, fmt.Errorf("%w: %shandlers.%s.dlq.topic: handler %q dead-letters to %q, and every dead letter would be refused and redelivered without end: %w; "+
			"set a shorter topic in that key", config.ErrInvalidConfig, s.where("handlers."+name+".dlq"), name, name, dlqTopic, err))
	}
	return errs
}

// monitor names the dead-letter monitor among a topic's consumers.
const monitor = "the dead-letter monitor"

// where returns "file:line: " of the first key the file sets under path,
// or "" when it sets none.
func (s *Service) where(path string) string {
	for _, st := range s.Config.Settings() {
		if st.Path != path && !strings.HasPrefix(st.Path, path+".") || st.Source == "default" {
			continue
		}
		src, _, _ := strings.Cut(st.Source, ",")
		return src + ": "
	}
	return ""
}
