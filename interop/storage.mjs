// storage.mjs runs JoinStorageSession and JoinStorageSessionAsViewer through
// the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis-video-webrtc-storage,
// pinned in package-lock.json) against the WEBRTC endpoint the local service
// gives for KVS_CHANNEL_ARN (media storage enabled), and on KVS_PLAIN_ARN (no
// media storage) and a channel that does not exist, for the Go interop test.
// It prints one JSON object per step. Credentials and region come from the
// standard environment; the CA through NODE_EXTRA_CA_CERTS.
import { KinesisVideoClient, GetSignalingChannelEndpointCommand } from '@aws-sdk/client-kinesis-video';
import {
  KinesisVideoWebRTCStorageClient, JoinStorageSessionCommand, JoinStorageSessionAsViewerCommand,
} from '@aws-sdk/client-kinesis-video-webrtc-storage';

const out = (step, v) => process.stdout.write(JSON.stringify({ step, ...v }) + '\n');
const failure = (err) => ({ error: err.name, status: err.$metadata?.httpStatusCode, message: String(err.message) });
const kv = new KinesisVideoClient({ endpoint: process.env.KVS_ENDPOINT_URL });
const arn = process.env.KVS_CHANNEL_ARN;

try {
  const e = await kv.send(new GetSignalingChannelEndpointCommand({
    ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ['WEBRTC'], Role: 'MASTER' },
  }));
  const endpoint = e.ResourceEndpointList[0].ResourceEndpoint;
  out('endpoint', { endpoint });
  try {
    await kv.send(new GetSignalingChannelEndpointCommand({
      ChannelARN: process.env.KVS_PLAIN_ARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WEBRTC'], Role: 'MASTER' },
    }));
    out('endpointNoStorage', { error: null });
  } catch (err) {
    out('endpointNoStorage', failure(err));
  }
  const storage = new KinesisVideoWebRTCStorageClient({ endpoint, maxAttempts: 1 });
  const j = await storage.send(new JoinStorageSessionCommand({ channelArn: arn }));
  out('join', { status: j.$metadata.httpStatusCode });
  for (const [step, channelArn] of [['joinNoStorage', process.env.KVS_PLAIN_ARN], ['joinMissing', arn.replace(/\/[0-9]+$/, '/1')]]) {
    try {
      await storage.send(new JoinStorageSessionCommand({ channelArn }));
      out(step, { error: null });
    } catch (err) {
      out(step, failure(err));
    }
  }
  try {
    await storage.send(new JoinStorageSessionAsViewerCommand({ channelArn: arn, clientId: 'viewer-1' }));
    out('joinAsViewer', { error: null });
  } catch (err) {
    out('joinAsViewer', failure(err));
  }
} catch (err) {
  out('error', { name: err.name, message: String(err.message) });
  process.exitCode = 1;
}
