// jsclient.js runs the official KVS WebRTC JS SDK's SignalingClient in Node
// for the Go interop tests. It is driven over stdio with one JSON object per
// line: events go to stdout ({"event":"open"}, {"event":"sdpOffer",...}),
// commands come from stdin ({"cmd":"sendSdpAnswer",...}).
//
// Configuration comes from the environment: KVS_ROLE (MASTER|VIEWER),
// KVS_CHANNEL_ARN, KVS_ENDPOINT (wss://...), KVS_REGION, KVS_CLIENT_ID (viewer),
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. A custom CA is
// trusted through Node's own NODE_EXTRA_CA_CERTS.
'use strict';

// The SDK looks for a global WebSocket first, as in a browser.
globalThis.WebSocket = require('ws');
const readline = require('readline');
const { SignalingClient, Role, VERSION } = require('amazon-kinesis-video-streams-webrtc');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const env = process.env;
const role = env.KVS_ROLE === 'MASTER' ? Role.MASTER : Role.VIEWER;
const client = new SignalingClient({
  role,
  channelARN: env.KVS_CHANNEL_ARN,
  channelEndpoint: env.KVS_ENDPOINT,
  clientId: role === Role.VIEWER ? env.KVS_CLIENT_ID : undefined,
  region: env.KVS_REGION,
  credentials: {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    sessionToken: env.AWS_SESSION_TOKEN || undefined,
  },
  systemClockOffset: 0,
});

client.on('open', () => out({ event: 'open' }));
client.on('close', () => out({ event: 'close' }));
client.on('error', (e) => out({ event: 'error', message: String(e && e.message || e) }));
client.on('sdpOffer', (sdp, sender) => out({ event: 'sdpOffer', payload: sdp, sender: sender || '' }));
client.on('sdpAnswer', (sdp, sender) => out({ event: 'sdpAnswer', payload: sdp, sender: sender || '' }));
client.on('iceCandidate', (c, sender) => out({ event: 'iceCandidate', payload: c, sender: sender || '' }));
client.on('statusResponse', (s) => out({ event: 'statusResponse', payload: s }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ event: 'error', message: 'bad command: ' + line });
    return;
  }
  try {
    switch (cmd.cmd) {
      case 'sendSdpOffer':
        client.sendSdpOffer(cmd.payload, cmd.recipient, cmd.correlationId);
        break;
      case 'sendSdpAnswer':
        client.sendSdpAnswer(cmd.payload, cmd.recipient, cmd.correlationId);
        break;
      case 'sendIceCandidate':
        client.sendIceCandidate(cmd.payload, cmd.recipient, cmd.correlationId);
        break;
      case 'close':
        client.close();
        break;
      default:
        out({ event: 'error', message: 'unknown command ' + cmd.cmd });
        return;
    }
    out({ event: 'sent', cmd: cmd.cmd });
  } catch (e) {
    out({ event: 'error', message: String(e && e.message || e) });
  }
});
rl.on('close', () => {
  client.close();
  setTimeout(() => process.exit(0), 100);
});

out({ event: 'ready', version: VERSION || require('amazon-kinesis-video-streams-webrtc/package.json').version });
client.open();
