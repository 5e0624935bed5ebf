// Command levee is Levee's command-line tool.
//
//	levee config check FILE   validate a levee.yaml and print each
//	                          handler's resolved stack in canonical order
//	levee dlq ...             dead letters: groups, list, show, replay,
//	                          archive, prune (see docs/OPERATIONS.md)
//
// It exits 0 when the file is valid, 1 when it is not (the error names the
// file, the line and the key path), and 2 on a usage error.
package main
