#!/bin/sh
# Print the systemd exposure score of the shipped unit (0 = locked down, 10 = wide
# open), measured offline: no running systemd or installed unit is needed.
#
#   scripts/security_score.sh [UNIT_FILE] [MAX_SCORE]
#
# Prints the checks that still count against the unit, then one line
#   exposure <score> <label> (systemd <version>)
# and exits 1 when the score is above MAX_SCORE (default 4.0, systemd's "OK").
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
unit=${1:-"$here/../systemd/heygem-daemon.service"}
max=${2:-4.0}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not found: install systemd (>= 250 for --offline)" >&2
    exit 2
fi

report=$(systemd-analyze security --offline=yes --no-pager "$unit")
# The lines marked with a cross are what the score is made of.
printf '%s\n' "$report" | grep '✗' || true
overall=$(printf '%s\n' "$report" | sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
if [ -z "$overall" ]; then
    echo "could not read the exposure level from systemd-analyze" >&2
    exit 2
fi
version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
score=${overall%% *}
echo "exposure $overall (systemd $version)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' || {
    echo "exposure $score is above $max" >&2
    exit 1
}
