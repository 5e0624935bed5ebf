// Command levee is Levee's command-line tool.
//
//	levee config check FILE   validate a levee.yaml and print each
//	                          handler's resolved stack in canonical order
//	levee dlq ...             dead letters: groups, list, show, replay,
//	                          archive, prune (see docs/OPERATIONS.md), and
//	                          serve, the console (docs/CONSOLE.md)
//	levee fleet ...           the fleet breaker's kill switch: breaker KEY
//	                          force open|closed|none, or status (docs/FLEET.md)
//	levee help                the usage (also -h, --help)
//
// Every command exits 0 on success (`levee config check`: the file is
// valid), 1 on a failure (an invalid file, whose errors name the file, the
// line and the key path; a store or broker that cannot be reached; `levee
// dlq show` of an ID the store does not have), and 2 on a usage error.
package main
