#!/bin/sh
# Checks and unit-tests the Levee alert rules (DLQ, breaker, fleet) with promtool.
# Installs promtool (Debian's prometheus package) when it is missing and we
# are root. Usage: docs/alerts/test.sh   (from anywhere)
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing promtool (apt-get install prometheus)" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
	else
		echo "test.sh: promtool not found; install the prometheus package" >&2
		exit 1
	fi
fi
cd "$dir"
promtool check rules levee-dlq.rules.yml levee-breaker.rules.yml levee-fleet.rules.yml
promtool test rules levee-dlq.rules.test.yml levee-breaker.rules.test.yml levee-fleet.rules.test.yml
