// media.mjs reads a recording back through the AWS SDK for JavaScript v3
// (@aws-sdk/client-kinesis-video-archived-media and
// @aws-sdk/client-kinesis-video-media, pinned in package-lock.json), on the
// endpoints GetDataEndpoint gives for the stream KVS_STREAM, for the Go
// interop test: ListFragments, GetMediaForFragmentList of the first two,
// GetMedia from EARLIEST for KVS_CHUNKS chunks (read as it streams), and
// the errors for a stream that does not exist and a bad selector. It prints
// one JSON object per step, with the AWS_KINESISVIDEO_* tags it found in
// the MKV, in order. Credentials and region come from the standard
// environment; the CA through NODE_EXTRA_CA_CERTS.
import { KinesisVideoClient, GetDataEndpointCommand } from '@aws-sdk/client-kinesis-video';
import {
  KinesisVideoArchivedMediaClient, ListFragmentsCommand, GetMediaForFragmentListCommand,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { KinesisVideoMediaClient, GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';

const out = (step, v) => process.stdout.write(JSON.stringify({ step, ...v }) + '\n');
const failure = (err) => ({ error: err.name, status: err.$metadata?.httpStatusCode });
const StreamName = process.env.KVS_STREAM;
const chunks = Number(process.env.KVS_CHUNKS);
const kv = new KinesisVideoClient({ endpoint: process.env.KVS_ENDPOINT_URL });

// vint reads an EBML variable-size integer at buf[i]: [value, length], or
// null past the end of buf.
function vint(buf, i, keepMarker) {
  if (i >= buf.length) return null;
  const b = buf[i];
  let n = 1;
  while (n <= 8 && !(b & (0x80 >> (n - 1)))) n++;
  if (n > 8 || i + n > buf.length) return null;
  let v = keepMarker ? b : b & (0xff >> n);
  for (let k = 1; k < n; k++) v = v * 256 + buf[i + k];
  return [v, n];
}

// kvsTags finds the SimpleTags named AWS_KINESISVIDEO_* in an MKV byte
// stream (a TagName element, 0x45A3, followed by its TagString, 0x4487).
function kvsTags(buf) {
  const tags = [];
  const tagName = Buffer.from([0x45, 0xa3]);
  for (let i = buf.indexOf(tagName); i >= 0; i = buf.indexOf(tagName, i + 1)) {
    const ns = vint(buf, i + 2, false);
    if (!ns) break;
    const nameAt = i + 2 + ns[1];
    const name = buf.toString('latin1', nameAt, nameAt + ns[0]);
    if (!name.startsWith('AWS_KINESISVIDEO_')) continue;
    const j = nameAt + ns[0];
    const id = vint(buf, j, true);
    if (!id) break;
    if (id[0] !== 0x4487) continue;
    const vs = vint(buf, j + id[1], false);
    if (!vs || j + id[1] + vs[1] + vs[0] > buf.length) break; // not all here yet
    const at = j + id[1] + vs[1];
    tags.push([name, buf.toString('latin1', at, at + vs[0])]);
  }
  return tags;
}

async function endpoint(APIName) {
  const e = await kv.send(new GetDataEndpointCommand({ StreamName, APIName }));
  return e.DataEndpoint;
}

try {
  const archived = new KinesisVideoArchivedMediaClient({ endpoint: await endpoint('LIST_FRAGMENTS'), maxAttempts: 1 });
  const l = await archived.send(new ListFragmentsCommand({
    StreamName,
    FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(0), EndTimestamp: new Date() } },
  }));
  const fragments = l.Fragments.map((f) => f.FragmentNumber).sort();
  out('list', {
    fragments,
    lengthsMs: l.Fragments.map((f) => f.FragmentLengthInMilliseconds),
    sizes: l.Fragments.map((f) => f.FragmentSizeInBytes),
  });

  const forList = new KinesisVideoArchivedMediaClient({ endpoint: await endpoint('GET_MEDIA_FOR_FRAGMENT_LIST'), maxAttempts: 1 });
  const fl = await forList.send(new GetMediaForFragmentListCommand({ StreamName, Fragments: fragments.slice(0, 2) }));
  const flBytes = Buffer.from(await fl.Payload.transformToByteArray());
  out('fragmentList', { contentType: fl.ContentType, bytes: flBytes.length, tags: kvsTags(flBytes) });

  const media = new KinesisVideoMediaClient({ endpoint: await endpoint('GET_MEDIA'), maxAttempts: 1 });
  const abort = new AbortController();
  const gm = await media.send(new GetMediaCommand({ StreamName, StartSelector: { StartSelectorType: 'EARLIEST' } }), { abortSignal: abort.signal });
  let buf = Buffer.alloc(0);
  let tags = [];
  for await (const part of gm.Payload) {
    buf = Buffer.concat([buf, part]);
    tags = kvsTags(buf);
    if (tags.filter(([n]) => n === 'AWS_KINESISVIDEO_CONTINUATION_TOKEN').length >= chunks) break;
  }
  abort.abort();
  gm.Payload.destroy();
  out('getMedia', { contentType: gm.ContentType, bytes: buf.length, tags });

  for (const [step, input] of [
    ['getMediaMissing', { StreamName: StreamName + '-missing', StartSelector: { StartSelectorType: 'NOW' } }],
    ['getMediaBadSelector', { StreamName, StartSelector: { StartSelectorType: 'FRAGMENT_NUMBER' } }],
  ]) {
    try {
      const r = await media.send(new GetMediaCommand(input));
      r.Payload.destroy();
      out(step, { error: null });
    } catch (err) {
      out(step, failure(err));
    }
  }
} catch (err) {
  out('error', { name: err.name, message: String(err.message) });
  process.exitCode = 1;
}
