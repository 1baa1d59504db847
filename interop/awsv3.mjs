// awsv3.mjs runs the control plane and GetIceServerConfig through the AWS SDK
// for JavaScript v3 (@aws-sdk/client-kinesis-video and
// @aws-sdk/client-kinesis-video-signaling, pinned in package-lock.json)
// against the endpoint in KVS_ENDPOINT_URL, for the Go interop test. It prints
// one JSON object per step. Credentials and region come from the standard
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); a custom
// CA is trusted through NODE_EXTRA_CA_CERTS.
import {
  KinesisVideoClient, CreateSignalingChannelCommand, DescribeSignalingChannelCommand,
  GetSignalingChannelEndpointCommand, ListSignalingChannelsCommand, UpdateSignalingChannelCommand,
  TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand, DeleteSignalingChannelCommand,
} from '@aws-sdk/client-kinesis-video';
import { KinesisVideoSignalingClient, GetIceServerConfigCommand } from '@aws-sdk/client-kinesis-video-signaling';

const out = (step, v) => process.stdout.write(JSON.stringify({ step, ...v }) + '\n');
const kv = new KinesisVideoClient({ endpoint: process.env.KVS_ENDPOINT_URL });
const name = process.env.KVS_CHANNEL_NAME;

try {
  const c = await kv.send(new CreateSignalingChannelCommand({
    ChannelName: name, SingleMasterConfiguration: { MessageTtlSeconds: 30 }, Tags: [{ Key: 'team', Value: 'video' }],
  }));
  out('create', { arn: c.ChannelARN });
  const d = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: name }));
  out('describe', { status: d.ChannelInfo.ChannelStatus, ttl: d.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds,
    created: d.ChannelInfo.CreationTime instanceof Date, version: d.ChannelInfo.Version });
  const byArn = await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: c.ChannelARN }));
  out('describeByARN', { name: byArn.ChannelInfo.ChannelName });
  const e = await kv.send(new GetSignalingChannelEndpointCommand({
    ChannelARN: c.ChannelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' },
  }));
  const ep = Object.fromEntries(e.ResourceEndpointList.map((x) => [x.Protocol, x.ResourceEndpoint]));
  out('endpoint', ep);
  const l = await kv.send(new ListSignalingChannelsCommand({
    ChannelNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: name },
  }));
  out('list', { names: l.ChannelInfoList.map((x) => x.ChannelName) });
  await kv.send(new UpdateSignalingChannelCommand({
    ChannelARN: c.ChannelARN, CurrentVersion: d.ChannelInfo.Version, SingleMasterConfiguration: { MessageTtlSeconds: 90 },
  }));
  const d2 = await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: c.ChannelARN }));
  out('update', { ttl: d2.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds });
  await kv.send(new TagResourceCommand({ ResourceARN: c.ChannelARN, Tags: [{ Key: 'env', Value: 'test' }] }));
  await kv.send(new UntagResourceCommand({ ResourceARN: c.ChannelARN, TagKeyList: ['team'] }));
  const t = await kv.send(new ListTagsForResourceCommand({ ResourceARN: c.ChannelARN }));
  out('tags', { tags: t.Tags });
  const sig = new KinesisVideoSignalingClient({ endpoint: ep.HTTPS });
  const ice = await sig.send(new GetIceServerConfigCommand({ ChannelARN: c.ChannelARN, ClientId: 'viewer-1', Service: 'TURN' }));
  out('ice', { servers: ice.IceServerList.length, uris: ice.IceServerList.flatMap((s) => s.Uris), ttl: ice.IceServerList[0]?.Ttl,
    hasCredentials: Boolean(ice.IceServerList[0]?.Username && ice.IceServerList[0]?.Password) });
  try {
    await kv.send(new DescribeSignalingChannelCommand({ ChannelName: name + '-missing' }));
    out('notFound', { error: null });
  } catch (err) {
    out('notFound', { error: err.name, status: err.$metadata?.httpStatusCode });
  }
  try {
    await kv.send(new CreateSignalingChannelCommand({ ChannelName: name }));
    out('inUse', { error: null });
  } catch (err) {
    out('inUse', { error: err.name, status: err.$metadata?.httpStatusCode });
  }
  await kv.send(new DeleteSignalingChannelCommand({ ChannelARN: c.ChannelARN }));
  out('delete', {});
} catch (err) {
  out('error', { name: err.name, message: String(err.message) });
  process.exitCode = 1;
}
