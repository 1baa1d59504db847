#!/usr/bin/env bash
# Signaling service load benchmark (bench/README.md, "Signaling service load"):
# runs bench/relay/loadgen against `kvswebrtc serve` and against the bare
# relay, ROUNDS times each, alternating, with the same load. Extra arguments
# go to every loadgen run (e.g. -duration 10s).
# Usage, from the repository root: bash bench/relay/run.sh [loadgen flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/loadgen" ./bench/relay/loadgen
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3-4)"
for i in $(seq 1 "$ROUNDS"); do
	for mode in serve bare; do
		flags=(-channels 1000 -viewers 9 -rate 10000 -duration 30s)
		[ "$mode" = bare ] && flags+=(-bare)
		echo "== round $i: $mode ($(uptime | sed 's/.*load/load/'))"
		"$tmp/loadgen" "${flags[@]}" "$@" 2>"$tmp/log" || { cat "$tmp/log"; exit 1; }
		grep -iE 'slow|error|fail' "$tmp/log" | head -5 || true
	done
done
