#!/usr/bin/env bash
# Runs every Fuzz* target of the module, one after another, each for
# FUZZTIME (default 30s). Targets are discovered with `go test -list`.
# New failing inputs land in the package's testdata/fuzz/ and are meant to be
# committed with the fix.
#
# Usage: scripts/fuzz.sh [packages...]   (default ./...)
set -euo pipefail

fuzztime="${FUZZTIME:-30s}"
if [ "$#" -eq 0 ]; then
	set -- ./...
fi

list="$(mktemp)"
trap 'rm -f "$list"' EXIT

# `go test -list` prints the matching names of a package, then a line
# "ok<TAB>import/path<TAB>time" for it.
# A package that does not build is reported and counted as a failure, and the
# targets of the others still run.
list_failed=0
go test -run='^$' -list '^Fuzz' "$@" >"$list" || list_failed=1

targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*)
		names+=("$line")
		;;
	ok*)
		pkg="$(printf '%s\n' "$line" | awk '{print $2}')"
		for n in "${names[@]}"; do
			targets+=("$pkg $n")
		done
		names=()
		;;
	esac
done <"$list"

if [ "${#targets[@]}" -eq 0 ] && [ "$list_failed" -eq 0 ]; then
	echo "fuzz: no Fuzz targets found in $*"
	exit 0
fi

echo "fuzz: ${#targets[@]} targets, ${fuzztime} each"
failed=()
if [ "$list_failed" -ne 0 ]; then
	broken="$(awk '$1 == "FAIL" && NF > 1 {print $2}' "$list" | sort -u | tr '\n' ' ')"
	failed+=("listing targets failed; packages that did not build: ${broken:-see above}")
fi
for t in "${targets[@]}"; do
	pkg="${t% *}"
	name="${t#* }"
	echo "=== fuzz ${pkg} ${name}"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done

if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: failures:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
