// Package untrusted marks the characters of untrusted text (a dead
// letter's fields) that change how the text around them shows, for the
// command line and the dead-letter console to show them as escapes. It is
// pure and safe for concurrent use.
package untrusted
