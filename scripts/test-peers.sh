#!/usr/bin/env bash
# Makes sure the real peers that Outpost's tests talk to are installed:
# Debian's mosquitto (a cloud-broker stand-in), mosquitto_pub/mosquitto_sub
# (LAN clients), socat (pty pairs for serial links) and openssl (test
# certificates); for the packaging tests, systemd-analyze, lintian and
# adduser; for the firmware, gcc and clang with their sanitizer and libFuzzer
# runtimes and arm-none-eabi-gcc with newlib (the Cortex-M0+ size report);
# Chromium for the status page test.
#
# Run as root with apt-get available, it installs what is missing. Otherwise
# it prints what is missing and how to install it. The tests skip a test whose
# peer is absent, except under CI=true, where a missing peer is a failure; so
# under CI this script fails too when something is still missing.
set -euo pipefail

# Debian installs the broker in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command -> Debian package that provides it
declare -A pkg_of=(
	[mosquitto]=mosquitto
	[mosquitto_pub]=mosquitto-clients
	[mosquitto_sub]=mosquitto-clients
	[socat]=socat
	[openssl]=openssl
	[systemd-analyze]=systemd
	[lintian]=lintian
	[adduser]=adduser
	[clang]=clang
	[arm-none-eabi-gcc]=gcc-arm-none-eabi
	[chromium]=chromium
)

# file -> Debian package, for what installs no command: newlib for the
# Cortex-M0+ firmware build, and clang's sanitizer and libFuzzer runtimes.
declare -A pkg_of_file=(
	[/usr/lib/arm-none-eabi/newlib/thumb/v6-m/nofp/libc_nano.a]=libnewlib-arm-none-eabi
	[/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a]=libclang-rt-14-dev
)

missing_packages() {
	local cmd
	for cmd in "${!pkg_of[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || echo "${pkg_of[$cmd]}"
	done
	local f
	for f in "${!pkg_of_file[@]}"; do
		# Another clang or a non-x86 machine keeps these files elsewhere;
		# look only where this machine's clang would.
		case "$f" in
		*/llvm-14/*) [ -d /usr/lib/llvm-14 ] && [ "$(uname -m)" = x86_64 ] || continue ;;
		esac
		[ -e "$f" ] || echo "${pkg_of_file[$f]}"
	done
}

list_missing() {
	missing_packages | sort -u
}

# stop_broker_service stops and disables the mosquitto service that Debian's
# package starts on port 1883, where it would stand in the way of `make run`.
# The tests start their own mosquitto on free ports.
stop_broker_service() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		service mosquitto stop >/dev/null 2>&1 || true
	fi
}

mapfile -t missing < <(list_missing)
if [ "${#missing[@]}" -eq 0 ]; then
	echo "test peers: all present (mosquitto, mosquitto-clients, socat, openssl, systemd, lintian, adduser, clang, gcc-arm-none-eabi, chromium)"
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test peers: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	for p in "${missing[@]}"; do
		if [ "$p" = mosquitto ]; then
			stop_broker_service
			echo "test peers: stopped the mosquitto service that the package started on port 1883"
		fi
	done
	mapfile -t missing < <(list_missing)
fi

if [ "${#missing[@]}" -eq 0 ]; then
	echo "test peers: all present"
	exit 0
fi

echo "test peers: missing ${missing[*]}" >&2
echo "test peers: install them with: sudo apt-get install ${missing[*]}" >&2
if [ "${CI:-}" = true ]; then
	echo "test peers: CI=true, so a missing peer is a failure" >&2
	exit 1
fi
echo "test peers: tests that need them will be skipped" >&2
exit 0
