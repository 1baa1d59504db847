#!/usr/bin/env bash
# SigV4 presigning: the official JS SDK's SigV4RequestSigner (Node) against
# the Go sigv4 package, same inputs, on this machine, in one run.
#
# Usage (from the repo root): bash bench/sigv4/run.sh
#
# Env: JS_N (URLs per JS round, default 20000), JS_WARMUP (default 5000),
#      JS_ROUNDS (default 5), GO_COUNT (go test -count, default 5),
#      TARGET (required Go speed-up, default 20).
#
# Exits non-zero if the JS and Go URLs differ (or a step fails). Whether the
# speed target is met is printed, not turned into an exit status.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
JS_N="${JS_N:-20000}"
JS_WARMUP="${JS_WARMUP:-5000}"
JS_ROUNDS="${JS_ROUNDS:-5}"
GO_COUNT="${GO_COUNT:-5}"
TARGET="${TARGET:-20}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ ! -d "$here/node_modules/amazon-kinesis-video-streams-webrtc" ]; then
  echo "== npm ci (bench/sigv4)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== JS: SDK as shipped (isomorphic-webcrypto), n=$JS_N x $JS_ROUNDS rounds, warm-up $JS_WARMUP"
node "$here/presign.js" --n "$JS_N" --warmup "$JS_WARMUP" --rounds "$JS_ROUNDS" --crypto sdk >"$tmp/js.json"
echo "== JS: same SDK code on Node's native globalThis.crypto.subtle"
node "$here/presign.js" --n "$JS_N" --warmup "$JS_WARMUP" --rounds "$JS_ROUNDS" --crypto native >"$tmp/jsnative.json"

echo "== Go: URL for the same inputs"
(cd "$root" && go run ./bench/sigv4/gourl) >"$tmp/go.url"

echo "== Go: go test -run '^\$' -bench BenchmarkPresignURL -benchmem -count $GO_COUNT ./sigv4/"
(cd "$root" && go test -run '^$' -bench BenchmarkPresignURL -benchmem -count "$GO_COUNT" ./sigv4/) | tee "$tmp/go.bench"

# Everything below is plain arithmetic on the files above; node parses the JSON.
node - "$tmp" "$TARGET" <<'JS'
const fs = require('fs');
const path = require('path');
const [tmp, targetArg] = process.argv.slice(2);
const target = Number(targetArg);
const js = JSON.parse(fs.readFileSync(path.join(tmp, 'js.json'), 'utf8'));
const jsn = JSON.parse(fs.readFileSync(path.join(tmp, 'jsnative.json'), 'utf8'));
const goURL = fs.readFileSync(path.join(tmp, 'go.url'), 'utf8').replace(/\n$/, '');
const bench = fs.readFileSync(path.join(tmp, 'go.bench'), 'utf8');

const nsPerOp = [];
let bytesPerOp = '', allocsPerOp = '';
for (const line of bench.split('\n')) {
  const m = line.match(/^BenchmarkPresignURL\S*\s+\d+\s+([\d.]+) ns\/op(?:\s+(\d+) B\/op\s+(\d+) allocs\/op)?/);
  if (m) {
    nsPerOp.push(Number(m[1]));
    if (m[2]) { bytesPerOp = m[2]; allocsPerOp = m[3]; }
  }
}
if (nsPerOp.length === 0) {
  console.error('run.sh: no BenchmarkPresignURL result in go test output');
  process.exit(1);
}
const sorted = [...nsPerOp].sort((a, b) => a - b);
const goUs = sorted[Math.floor(sorted.length / 2)] / 1000;

let bad = false;
for (const [name, r] of [['JS (as shipped)', js], ['JS (native WebCrypto)', jsn]]) {
  if (r.url !== goURL) {
    bad = true;
    // The inputs are fixed fake credentials, so the URLs carry no secret.
    console.error(`URL MISMATCH: ${name} vs Go`);
    console.error(`  JS: ${r.url}`);
    console.error(`  Go: ${goURL}`);
  }
}

const ratio = js.us_per_url / goUs;
const ratioNative = jsn.us_per_url / goUs;
const f = (x) => x.toFixed(2);
console.log('');
console.log('== Summary: SigV4 presigning (one viewer URL with session token)');
console.log(`JS SDK ${js.sdk_version} on Node ${js.node}, as shipped:  ${f(js.us_per_url)} us/URL (median of rounds ${js.rounds_us_per_url.join(', ')})`);
console.log(`JS SDK ${jsn.sdk_version}, native WebCrypto (info):  ${f(jsn.us_per_url)} us/URL (median of rounds ${jsn.rounds_us_per_url.join(', ')})`);
console.log(`Go sigv4:                               ${f(goUs)} us/URL (median of ${nsPerOp.length}: ${nsPerOp.join(', ')} ns/op; ${bytesPerOp} B/op, ${allocsPerOp} allocs/op)`);
console.log(`Ratio JS as shipped / Go:               ${f(ratio)}x`);
console.log(`Ratio JS native WebCrypto / Go (info):  ${f(ratioNative)}x`);
console.log(`URLs identical:                         ${bad ? 'NO' : `yes (${goURL.length} bytes, both JS variants)`}`);
console.log(`Target (Go >= ${target}x faster than JS as shipped): ${ratio >= target ? 'MET' : 'NOT MET'}`);
process.exit(bad ? 1 : 0);
JS
