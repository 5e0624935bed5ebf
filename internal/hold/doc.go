// Package hold keeps one delivery's hold budget across Levee's concerns.
//
// Every concern that holds a message (the dlq's in-process backoff, the
// breaker's pause and drain, the priority queue, the rate limit's wait)
// bounds its wait by the max hold, so that the transport does not
// redeliver a message Levee still holds (the max hold is set below the
// transport's ack deadline). The bound is the delivery's, not each
// concern's: a message that waited 0.7 of it in the breaker has 0.3 left
// for the rate limit. The first concern that holds a message records the
// deadline in the message's context; the others take the earlier of it and
// their own. Recording allocates (one context value), but only when a
// message is held: the success path without a wait never calls it.
package hold
