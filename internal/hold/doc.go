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
//
// A delivery's wait account (Waits) sums the time the concerns spent
// waiting in it. A breaker that counts slow calls sets one up (Account: one
// allocation per delivery) and judges a call on its time less the waits
// the concerns inside its slot added (AddWait, called only on a path that
// waited): backpressure is not failure, so a backlog waiting for its turn
// is not a slow downstream.
package hold
