// Package redisstore is the Redis implementation of dlqops.Store, through
// go-redis v9: the dead letters recorded by dlqops.Monitor, grouped, listed,
// claimed and replayed by dlqops.Replayer and the `levee dlq` CLI, on one
// Redis server (6.2 or newer) shared by every process.
//
// Where it sits: outside the middleware order, like adapters/pgstore. The
// Monitor writes to it, the Replayer and the CLI read and claim from it,
// and dlqops.GroupGauges reads it at metric collection time. Core packages do
// not import it; adapters/dlqstore.FromConfig builds it from the YAML
// section `store: {kind: redis, url: "redis://127.0.0.1:6379/0", prefix:
// levee}`.
//
// # Data layout
//
// Every key starts with "<prefix>:dlq:" (P below; WithPrefix, default
// "levee"). Times are Unix microseconds, the stored precision.
//
//	P r:<id>          hash, one letter: id uuid ouuid dlqt topic handler cg
//	                  fp ecl ety err att rc fat (failed at) rat (received at)
//	                  st (status) rsn rpat rpid pl (payload bytes), trunc
//	                  (what dlqops.BoundRecord cut), one field "m:<key>" per
//	                  metadata key (at most dlqops.MaxStoredMetadataKeys), and
//	                  co/cu (claim owner, lease end) while claimed
//	P all             sorted set of every id, score failed-at
//	P s:<status>      sorted set per status (new, replayed, archived)
//	P i:<d>:<key>     sorted set per group, d = f (fingerprint), t (original
//	                  topic) or h (handler)
//	P n:<d>:<key>     the same, new letters only
//	P g:<d>:<key>     hash of the group's counters: c (letters), s:<status>,
//	                  t:<topic> and h:<handler> (letters per topic, handler)
//	P k:<d>           set of the group keys of dimension d
//	P o:c:<d>         sorted set of the same keys, score minus the group's
//	                  letters: the groups by count (ties by key)
//	P o:l:<d>         the same, score minus the group's newest failed-at:
//	                  the groups newest first
//	P e:<id>          list of the letter's events (dlqops.Browser), JSON,
//	                  the newest dlqops.MaxEvents; deleted with the letter
//
// Store.Attempts, the shared attempt counter for dlq.WithAttemptStore,
// keeps one hash a failing message outside that namespace,
// "<prefix>:attempts:<len(handler)>:<handler>:<uuid>" (fields n and
// first), which expires a TTL after its last failure.
//
// Sorted sets order equal scores by member bytewise, so each index is in
// replay order (failed-at, then ID), as dlqops.Store requires. A letter costs
// its hash plus five sorted-set entries (eight while new), counter
// increments and six order-set updates. The order sets are rebuilt from
// the counters, O(G log G), by the first Groups that finds their size
// differs from the key set's: after an upgrade from a version that kept
// none, or when such a version (during a rolling upgrade) added a group;
// counts it changed in groups already there are not seen until a rebuild,
// so upgrade every writer. Letters have no TTL: retention is Prune's job (and
// `levee dlq prune`), and the server must not evict them.
//
// # Operations and their cost
//
// n is the number of letters, G the number of groups, w the index entries
// a query walks: the smallest index that holds every letter the filter
// can match (its group, topic or handler index, the new-only twin when
// only new letters are asked for, or a status index), within its time
// range.
//
//	Add            one script per WithBatchSize letters; O(log n) a letter;
//	               a stored ID is skipped (idempotent on redelivery)
//	Get            one HGETALL
//	List           O(w + m log n) for m letters returned; with IDs, O(k log n)
//	Groups         no filter, or one naming groups of the grouping asked
//	               for: O(log G + p log n) for a page of p groups, from
//	               the order sets and counters, whatever n is (p = G
//	               without a Limit), after an offset or a cursor (its
//	               rank: O(log G log t), t the groups tied with it);
//	               other filters: O(w), folding the letters walked:
//	               with a Limit, Offset or After, a walk that folds each
//	               group's count and newest failure only (O(G) small
//	               entries here, cut to the page), then a walk of each
//	               page group's own index
//	CountGroups    no filter: O(1); other filters: the first walk of
//	               Groups
//	SumGroups      no offset, no filter or a time range only: O(log n)
//	               from the indexes of all letters and of each status;
//	               past offset o, no filter: O((G-o) log n) in scripts
//	               of 1,000 groups, one row each; other filters: O(w),
//	               summing each step's partial groups (with an offset,
//	               folding them as Groups does)
//	Claim          O(w' + log n), w' the entries walked until Limit
//	               claimable letters are found
//	MarkReplayed,
//	Release        O(log n)
//	SetStatus      O(w log n)
//	Prune          O(d log n) for d letters deleted, oldest first
//	Page           O(w' log n), w' the entries walked backwards from the
//	               cursor until a page matches (at most 5,000 a call)
//	Hourly         O(keys × hours × log n)
//
// # Atomicity
//
// Every change is one Lua script, so a letter and its index entries and
// counters never disagree. Claim checks and sets each letter's owner and
// lease inside the script that walks the index: two claimers, in one
// process or in many, never get the same letter while its lease holds,
// and a crashed replayer's letters become claimable when the lease ends.
// A walk longer than one script step (5,000 index entries, 500 letters
// returned) continues in the next call from where it stopped, so a large
// List, Groups or SetStatus never blocks the server for long; each letter
// is read or changed atomically, but a long walk is not a snapshot.
// go-redis retries a command whose reply was lost; MarkReplayed and
// Release repeated that way still succeed, and a Claim repeated that way
// leaves the letters of the lost reply claimed until their lease ends
// (they are replayed later, never twice).
//
// # Limits
//
// One server (or a primary with replicas, Sentinel): the scripts derive
// key names, which Redis Cluster does not allow. Scores are float64:
// ordering and time filters are exact for failure times within about 285
// years of 1970. Durability is the server's: with the default snapshots a
// crash loses the letters written since the last one, after the Monitor
// acked them; run the server with appendonly yes (appendfsync everysec
// loses at most a second, always nothing) and maxmemory-policy noeviction.
//
// A Store is safe for concurrent use.
package redisstore
