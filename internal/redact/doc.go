// Package redact hides credentials in connection strings (URLs, libpq
// DSNs, user:password@host addresses) and in the errors that may carry
// them, so that no error message or log line prints a password.
//
// It is robust to strings that do not parse: a password with an unencoded
// '/', '#', '?', '@' or '%' breaks url.Parse (whose *url.Error then quotes
// the whole URL) or, worse, makes it parse with the password in the host or
// path. URL then masks everything between "://" and the last '@', and
// Error replaces every spelling of the password in an error's message.
//
// All functions are pure and safe for concurrent use.
package redact
