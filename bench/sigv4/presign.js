#!/usr/bin/env node
// Measures the official JS SDK's SigV4RequestSigner.getSignedURL in Node with
// the same inputs as BenchmarkPresignURL in sigv4/bench_test.go.
//
// Usage: node presign.js [--n N] [--warmup W] [--rounds R] [--crypto sdk|native]
//
//   --crypto sdk     (default) the SDK as shipped: in Node its dependency
//                    isomorphic-webcrypto resolves to @peculiar/webcrypto.
//   --crypto native  the same SDK code, with isomorphic-webcrypto replaced by
//                    Node's built-in globalThis.crypto (WebCrypto), closer to
//                    what a browser runs.
//
// Each URL is awaited before the next one is started (sequential, one at a
// time, like Go's benchmark loop). Prints one JSON object on stdout with the
// per-round and median microseconds per URL and the URL produced.
'use strict';

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf('--' + name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const N = parseInt(opt('n', '20000'), 10);
const WARMUP = parseInt(opt('warmup', '5000'), 10);
const ROUNDS = parseInt(opt('rounds', '5'), 10);
const CRYPTO = opt('crypto', 'sdk');
if (!(N > 0) || !(WARMUP >= 0) || !(ROUNDS > 0) || !['sdk', 'native'].includes(CRYPTO)) {
  console.error('usage: node presign.js [--n N>0] [--warmup W>=0] [--rounds R>0] [--crypto sdk|native]');
  process.exit(2);
}

if (CRYPTO === 'native') {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    console.error('presign.js: this Node has no globalThis.crypto.subtle');
    process.exit(2);
  }
  // Pre-populate the module cache so the SDK's require('isomorphic-webcrypto')
  // gets Node's native WebCrypto object instead of the polyfill.
  const id = require.resolve('isomorphic-webcrypto', {
    paths: [require.resolve('amazon-kinesis-video-streams-webrtc')],
  });
  const Module = require('module');
  const m = new Module(id);
  m.filename = id;
  m.loaded = true;
  m.exports = globalThis.crypto;
  require.cache[id] = m;
}

const { SigV4RequestSigner } = require('amazon-kinesis-video-streams-webrtc');
const SDK_VERSION = require('amazon-kinesis-video-streams-webrtc/package.json').version;

const REGION = 'us-west-2';
const CREDS = {
  accessKeyId: 'AKIA4F7WJQR7FMMWMNXI',
  secretAccessKey: 'FakeSecretKey',
  sessionToken: 'FakeSessionTokenFakeSessionTokenFakeSessionToken',
};
const ENDPOINT = 'wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com';
const QUERY = {
  'X-Amz-ChannelARN': 'arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1234567890123',
  'X-Amz-ClientId': 'viewer-0123456789',
};
const DATE = new Date('2019-12-01T00:00:00Z');

async function main() {
  const signer = new SigV4RequestSigner(REGION, CREDS);
  let url = '';
  for (let i = 0; i < WARMUP; i++) {
    url = await signer.getSignedURL(ENDPOINT, QUERY, DATE);
  }
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      url = await signer.getSignedURL(ENDPOINT, QUERY, DATE);
    }
    const ns = Number(process.hrtime.bigint() - start);
    rounds.push(ns / N / 1000);
  }
  const sorted = [...rounds].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  process.stdout.write(JSON.stringify({
    impl: 'amazon-kinesis-video-streams-webrtc',
    sdk_version: SDK_VERSION,
    crypto: CRYPTO === 'sdk' ? 'isomorphic-webcrypto (as shipped)' : 'node globalThis.crypto.subtle',
    node: process.version,
    n: N,
    warmup: WARMUP,
    rounds_us_per_url: rounds.map((x) => Number(x.toFixed(3))),
    us_per_url: Number(median.toFixed(3)),
    url,
  }) + '\n');
}

main().catch((err) => {
  console.error('presign.js:', err && err.stack ? err.stack : err);
  process.exit(1);
});
