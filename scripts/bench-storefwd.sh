#!/usr/bin/env bash
# Store-and-forward benchmarks on this machine, Outpost beside Debian's
# mosquitto in the same run (make bench-spool, make bench-uplink).
#
#   scripts/bench-storefwd.sh spool    durable appends through the broker
#       (1, 16, 64 QoS 1 publishers, sync always and never, mosquitto's bridge
#       for reference), then 1,000,000 messages spooled: resident set, bytes
#       on disk per message, stop time, restart to ready after SIGTERM and
#       after kill -9. About 6 minutes.
#   scripts/bench-storefwd.sh uplink   a backlog of 100k drained to a local
#       mosquitto (window 16, and 64, the default) against mosquitto's own bridge with
#       persistence; then kill -9 of each edge with the backlog acknowledged.
#       About 3 minutes.
#
# It builds cmd/outpost and bench/storefwd (see its doc comment for the
# method) into a temporary folder; brokers run on free 127.0.0.1 ports with
# their data in a temporary folder, removed at the end. The tables print
# ratios beside the numbers: the machine is shared, ratios hold better.
#
# Environment: GO (go), MOSQUITTO (found on PATH or in /usr/sbin), and
# STOREFWD_FLAGS, more flags for bench/storefwd (e.g. "-million 200000",
# "-n 20000", "-duration 10s").
set -euo pipefail

mode=${1:-}
case "$mode" in
spool | uplink) ;;
*)
	echo "usage: $0 spool|uplink" >&2
	exit 2
	;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
MOSQUITTO=${MOSQUITTO:-$(PATH="$PATH:/usr/sbin:/sbin" command -v mosquitto || true)}
if [ -z "$MOSQUITTO" ] || [ ! -x "$MOSQUITTO" ]; then
	echo "bench-$mode: Debian's mosquitto broker is needed (apt-get install mosquitto)" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$GO build -trimpath -o "$tmp/outpost" ./cmd/outpost
$GO build -trimpath -o "$tmp/storefwd" ./bench/storefwd

echo "== bench-$mode: $(git describe --always --dirty 2>/dev/null || echo unknown), $($GO version | cut -d' ' -f3), $(nproc) cores, $("$MOSQUITTO" -h 2>/dev/null | head -1)"
# shellcheck disable=SC2086 # STOREFWD_FLAGS is a list of flags
"$tmp/storefwd" "$mode" -outpost "$tmp/outpost" -mosquitto "$MOSQUITTO" ${STOREFWD_FLAGS:-}
