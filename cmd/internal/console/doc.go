// Package console is the dead-letter console that `levee dlq serve`
// serves: a Server (an http.Handler) over a dlqops.Store that is also a
// dlqops.Browser (MemStore, adapters/pgstore, adapters/redisstore).
//
// Pages: the groups (by fingerprint, topic or handler, with counts, first
// and last seen and a 24-hour trend), a group (its error, a stack where one
// exists, the newest letters, the canary replay form), a letter (payload,
// metadata, trace link, lineage), search, the archive, edit and retry, and
// a canary replay's live progress. Everything is html/template with the
// templates and the stylesheet embedded, and no JavaScript.
//
// Security: basic auth of Config.Users or bearer Config.Tokens (without
// either, only on loopback with --insecure-loopback: CheckListen); the
// viewer role reads only; every POST needs the form's CSRF token and
// passes http.CrossOriginProtection; a strict Content-Security-Policy;
// every action goes to the audit log (Deps.Audit) and to the letters'
// events.
//
// Canary replays run in the Server's goroutines; Close stops them. A
// Server is safe for concurrent use. docs/CONSOLE.md describes the console
// and how a canary replay learns outcomes.
package console
