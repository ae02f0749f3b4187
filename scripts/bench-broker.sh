#!/usr/bin/env bash
# Side-by-side broker benchmark: Outpost against Debian's mosquitto, on this
# machine, in the same run (make bench-broker).
#
# What it does
# - Builds cmd/outpost and bench/mqttload (the load generator: raw MQTT 3.1.1
#   over TCP through Outpost's allocation-free packet codec).
# - For every scenario, starts each broker fresh on a free 127.0.0.1 port
#   (config in a temp dir), runs mqttload against it, reads the broker's peak
#   resident set (VmHWM in /proc/PID/status) and stops it; so the peak is the
#   scenario's own. The two brokers alternate which goes first.
# - Prints one table, then runs the Go micro-benchmarks of localbroker/...
#
# Method (see bench/mqttload/main.go for the details)
# - fan-in: 16 publishers -> 1 subscriber; fan-out: 1 publisher -> 16
#   subscribers; payloads of 64 B and 4 KiB; QoS 0 and QoS 1.
# - Each run publishes for WARMUP, then measures for DURATION: msg/s is what
#   the subscribers received in that window; latency is end to end (a
#   monotonic send timestamp in the payload, read at the subscriber), p50/p99
#   over the window's messages.
# - QoS 1 is closed-loop: each publisher keeps 32 PUBLISHes unacknowledged at
#   most, subscribers PUBACK every delivery. A broker acknowledges a QoS 1
#   PUBLISH when it has it, not when it was delivered, so a subscriber slower
#   than the publishers makes the session queue overflow and the broker drop
#   (both brokers queue 1000 messages per session): the loss column says so.
# - QoS 0 "max" rows are open-loop overload: publishers write as fast as the
#   socket takes bytes; a broker may drop QoS 0 (its right), so the row reports
#   delivered msg/s, and its latency is queueing time, not a broker property.
# - QoS 0 "@R/s" rows publish R messages per second in total on a fixed
#   schedule (fan-in: R/16 per publisher; fan-out: each message reaches 16
#   subscribers, so 16*R deliveries/s), a rate both brokers sustain on a small
#   machine; their latency is the one to compare. R is 20000 (64 B) and 5000
#   (4 KiB) for fan-in, 2000 (64 B) and 500 (4 KiB) for fan-out: about
#   20-30 MB/s of 4 KiB payloads, where 20000/s of them (80 MB/s) is beyond
#   both brokers on a 2-core machine that also runs the load generator.
# - QoS 1 "@R/s" rows pace QoS 1 the same way (fan-in 5000/s, fan-out
#   1000/s), for a latency that is not a queue overflowing. A "!" after msg/s marks a
#   run that delivered less than 95% of the scheduled rate.
# - idle: IDLE_CONNS connections (CONNECT, keepalive 60, clean session) held
#   for DURATION while the broker's RSS is sampled; printed below the table
#   with the resident set before, while held, and per connection.
# - Same limits on both: 1000 queued messages per session, 64 in flight to a
#   client, no persistence, no $SYS, TCP_NODELAY (Go sets it on every socket,
#   so mosquitto gets set_tcp_nodelay true), logging at warning level.
#
# ratio = Outpost msg/s / mosquitto msg/s (above 1: Outpost delivers more).
# Absolute numbers depend on the machine and on what else runs on it; the
# load generator shares the CPU with the broker under test. Compare ratios.
#
# Environment: DURATION (5s), WARMUP (1s), FANIN_RATE (20000),
# FANIN_RATE_4K (5000), FANOUT_RATE (2000), FANOUT_RATE_4K (500),
# FANIN_RATE_Q1 (5000), FANOUT_RATE_Q1 (1000), IDLE_CONNS (2000), MICRO (1; 0 skips the Go
# micro-benchmarks), GO (go), MOSQUITTO (found on PATH or in /usr/sbin).
# Every step is bounded in time; the whole run takes about 4 minutes plus the
# micro-benchmarks.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

GO=${GO:-go}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
FANIN_RATE=${FANIN_RATE:-20000}
FANOUT_RATE=${FANOUT_RATE:-2000}
FANIN_RATE_4K=${FANIN_RATE_4K:-5000}
FANOUT_RATE_4K=${FANOUT_RATE_4K:-500}
FANIN_RATE_Q1=${FANIN_RATE_Q1:-5000}
FANOUT_RATE_Q1=${FANOUT_RATE_Q1:-1000}
IDLE_CONNS=${IDLE_CONNS:-2000}
MICRO=${MICRO:-1}
MOSQUITTO=${MOSQUITTO:-$(PATH="$PATH:/usr/sbin:/sbin" command -v mosquitto || true)}

if [ -z "$MOSQUITTO" ] || [ ! -x "$MOSQUITTO" ]; then
	echo "bench-broker: Debian's mosquitto broker is needed (apt-get install mosquitto)" >&2
	exit 1
fi

# Both brokers and mqttload inherit the file descriptor limit; the idle
# scenario needs a descriptor per connection on each side.
want=$((IDLE_CONNS + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
	echo "bench-broker: the hard fd limit $hard is below $want; IDLE_CONNS=$IDLE_CONNS needs more" >&2
	exit 1
fi
ulimit -n "$want"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")
BROKER_PID=
cleanup() {
	if [ -n "$BROKER_PID" ]; then stop_broker; fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building outpost and mqttload..."
"$GO" build -o "$TMP/outpost" ./cmd/outpost
"$GO" build -o "$TMP/mqttload" ./bench/mqttload
LOAD="$TMP/mqttload"

# start_broker NAME: starts mosquitto or outpost on a free port; sets
# BROKER_PID and PORT.
start_broker() {
	local name=$1
	PORT=$("$LOAD" -freeport)
	case $name in
	mosquitto)
		cat >"$TMP/mosquitto.conf" <<-EOF
			listener $PORT 127.0.0.1
			allow_anonymous true
			persistence false
			max_queued_messages 1000
			max_inflight_messages 64
			sys_interval 0
			set_tcp_nodelay true
			log_dest stderr
			log_type error
			log_type warning
		EOF
		"$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/mosquitto.log" 2>&1 &
		;;
	outpost)
		mkdir -p "$TMP/data"
		cat >"$TMP/outpost.toml" <<-EOF
			data_dir = "$TMP/data"
			[log]
			level = "warn"
			[broker]
			max_queued_messages = 1000
			max_inflight = 64
			sys_interval = "0s"
			[[listener]]
			name = "bench"
			type = "tcp"
			address = "127.0.0.1:$PORT"
			allow_anonymous = true
			# The broker alone, as mosquitto: no MQTT-SN transport.
			[mqttsn]
			enabled = false
		EOF
		"$TMP/outpost" run -c "$TMP/outpost.toml" >>"$TMP/outpost.log" 2>&1 &
		;;
	esac
	BROKER_PID=$!
	local i
	for i in $(seq 100); do
		if ! kill -0 "$BROKER_PID" 2>/dev/null; then
			echo "bench-broker: $name exited at start; its log:" >&2
			cat "$TMP/$name.log" >&2
			BROKER_PID=
			exit 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "bench-broker: $name does not listen on port $PORT after 5s" >&2
	exit 1
}

stop_broker() {
	local i
	kill -TERM "$BROKER_PID" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BROKER_PID" 2>/dev/null || true
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
}

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$BROKER_PID/status"; }

# kv KEY LINE: the value of KEY=value in a result line.
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# run NAME BROKER ARGS...: one scenario against one fresh broker; sets
# RESULT_<broker> and HWM_<broker>.
run() {
	local broker=$1
	shift
	start_broker "$broker"
	local extra=()
	if [ "$1" = "-scenario" ] && [ "$2" = idle ]; then extra=(-pid "$BROKER_PID"); fi
	local out
	if ! out=$(timeout 120 "$LOAD" -addr "127.0.0.1:$PORT" -duration "$DURATION" -warmup "$WARMUP" \
		-timeout 100s "${extra[@]}" "$@" 2>"$TMP/load.err"); then
		echo "bench-broker: mqttload $* against $broker failed:" >&2
		cat "$TMP/load.err" >&2
		echo "--- $broker log:" >&2
		tail -n 20 "$TMP/$broker.log" >&2
		exit 1
	fi
	local hwm
	hwm=$(hwm_kb)
	stop_broker
	local line
	line=$(grep '^result ' <<<"$out" | tail -n 1)
	printf -v "RESULT_$broker" '%s' "$line"
	printf -v "HWM_$broker" '%s' "$hwm"
}

lat() {
	awk -v a="$1" -v b="$2" 'function f(x) { if (x >= 1000) return sprintf("%.1fms", x/1000); return sprintf("%.0fus", x) }
		BEGIN { print f(a) "/" f(b) }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k/1024 }'; }
ratio() { awk -v o="$1" -v m="$2" 'BEGIN { if (m > 0) printf "%.2f", o/m; else print "-" }'; }
# rate MSGS EXPECTED: msg/s, with "!" when below 95% of the expected rate.
rate() { awk -v r="$1" -v e="$2" 'BEGIN { printf "%d%s", r, (e > 0 && r < 0.95*e) ? "!" : "" }'; }

SCENARIOS=(
	"fan-in  q0 64B   max|-scenario fanin -qos 0 -size 64"
	"fan-in  q0 64B   @${FANIN_RATE}/s|-scenario fanin -qos 0 -size 64 -rate $FANIN_RATE"
	"fan-in  q0 4KiB  max|-scenario fanin -qos 0 -size 4096"
	"fan-in  q0 4KiB  @${FANIN_RATE_4K}/s|-scenario fanin -qos 0 -size 4096 -rate $FANIN_RATE_4K"
	"fan-in  q1 64B|-scenario fanin -qos 1 -size 64"
	"fan-in  q1 4KiB|-scenario fanin -qos 1 -size 4096"
	"fan-in  q1 64B   @${FANIN_RATE_Q1}/s|-scenario fanin -qos 1 -size 64 -rate $FANIN_RATE_Q1"
	"fan-out q0 64B   max|-scenario fanout -qos 0 -size 64"
	"fan-out q0 64B   @${FANOUT_RATE}/s|-scenario fanout -qos 0 -size 64 -rate $FANOUT_RATE"
	"fan-out q0 4KiB  max|-scenario fanout -qos 0 -size 4096"
	"fan-out q0 4KiB  @${FANOUT_RATE_4K}/s|-scenario fanout -qos 0 -size 4096 -rate $FANOUT_RATE_4K"
	"fan-out q1 64B|-scenario fanout -qos 1 -size 64"
	"fan-out q1 4KiB|-scenario fanout -qos 1 -size 4096"
	"fan-out q1 64B   @${FANOUT_RATE_Q1}/s|-scenario fanout -qos 1 -size 64 -rate $FANOUT_RATE_Q1"
	"idle    ${IDLE_CONNS} conns|-scenario idle -conns $IDLE_CONNS"
)

echo "mosquitto: $("$MOSQUITTO" -h 2>&1 | head -n 1); outpost: $("$TMP/outpost" version | head -n 1)"
echo "$(nproc) cores; ${WARMUP} warm-up + ${DURATION} measured per run; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

ROWS=()
IDLE_LINES=()
i=0
for sc in "${SCENARIOS[@]}"; do
	name=${sc%%|*}
	read -r -a args <<<"${sc#*|}"
	order=(mosquitto outpost)
	if [ $((i % 2)) -eq 1 ]; then order=(outpost mosquitto); fi
	for broker in "${order[@]}"; do
		echo "  $name: $broker..."
		run "$broker" "${args[@]}"
	done
	m=$RESULT_mosquitto
	o=$RESULT_outpost
	if [ "${args[1]}" = idle ]; then
		ROWS+=("$(printf '%-26s | %14s | %14s | %6s | %17s | %17s | %10s | %10s | %s' \
			"$name" - - - - - "$(mib "$HWM_mosquitto")" "$(mib "$HWM_outpost")" -)")
		for b in mosquitto outpost; do
			r=RESULT_$b
			IDLE_LINES+=("$(printf '%-9s  before %s, holding %s, %s KiB per connection; connecting took %ss' "$b" \
				"$(mib "$(kv rss_before_kb "${!r}")")" "$(mib "$(kv rss_held_kb "${!r}")")" \
				"$(kv kb_per_conn "${!r}")" "$(kv connect_s "${!r}")")")
		done
	else
		expected=0
		r=$(kv rate "$m")
		if [ "$r" != 0 ]; then
			expected=$r
			if [ "$(kv scenario "$m")" = fanout ]; then expected=$(awk -v r="$r" -v c="$(kv clients "$m")" 'BEGIN { print r*c }'); fi
		fi
		ROWS+=("$(printf '%-26s | %14s | %14s | %6s | %17s | %17s | %10s | %10s | %s' "$name" \
			"$(rate "$(kv msgs_per_s "$m")" "$expected")" "$(rate "$(kv msgs_per_s "$o")" "$expected")" \
			"$(ratio "$(kv msgs_per_s "$o")" "$(kv msgs_per_s "$m")")" \
			"$(lat "$(kv p50_us "$m")" "$(kv p99_us "$m")")" "$(lat "$(kv p50_us "$o")" "$(kv p99_us "$o")")" \
			"$(mib "$HWM_mosquitto")" "$(mib "$HWM_outpost")" \
			"$(kv loss_pct "$m")%/$(kv loss_pct "$o")%")")
	fi
	i=$((i + 1))
done

echo
printf '%-26s | %14s | %14s | %6s | %17s | %17s | %10s | %10s | %s\n' \
	scenario "mosquitto msg/s" "outpost msg/s" ratio "p50/p99 mosquitto" "p50/p99 outpost" "RSS mosq" "RSS outpost" "loss mosq/outpost"
printf '%s\n' "$(printf '%.0s-' $(seq 154))"
printf '%s\n' "${ROWS[@]}"
echo
echo "idle connections (VmRSS):"
printf '  %s\n' "${IDLE_LINES[@]}"
echo
echo "RSS is each broker's peak (VmHWM) in the scenario; loss = 1 - received/(published x subscribers)."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) cores; other work on the machine skews absolute numbers and p99s)"

if [ "$MICRO" != 0 ]; then
	echo
	echo "go test -run=^\$ -bench=. -benchmem ./localbroker/..."
	"$GO" test -run='^$' -bench=. -benchmem -timeout 15m ./localbroker/...
fi
