#!/usr/bin/env bash
# Fails, listing them, when Go files of the repository are not gofmt-formatted
# (or do not parse). Files under testdata/ and hidden folders are left alone.
set -euo pipefail

cd "$(dirname "$0")/.."

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

status=0
find . \( -path './.*' -o -path ./bin -o -path ./outpost-data -o -name testdata \) -prune \
	-o -type f -name '*.go' -print0 |
	xargs -0 -r gofmt -l >"$out" || status=$?

if [ -s "$out" ]; then
	echo "gofmt: these files are not formatted; run gofmt -w on them:" >&2
	sed 's/^/  /' "$out" >&2
	exit 1
fi
if [ "$status" -ne 0 ]; then
	echo "gofmt: some files do not parse (see above)" >&2
	exit 1
fi
echo "gofmt: all files formatted"
