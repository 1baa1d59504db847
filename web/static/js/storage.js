// storage.js: the page's calls for WebRTC ingestion and storage and for
// playing the recordings back. The backend makes the AWS calls with its
// credentials (CreateStream, Describe/UpdateMediaStorageConfiguration,
// JoinStorageSession, GetHLSStreamingSessionURL, GetDASHStreamingSessionURL,
// GetClip); the browser sees only their answers and session URLs.

async function post(path, params) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params || {}),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

/** CreateStream: {streamName, retentionHours} -> {streamARN}. */
export function createStream(streamName, retentionHours, endpoint) {
  return post('api/streams', { streamName, retentionHours: Number(retentionHours), ...endpoint });
}

/** ListStreams -> {streams: [{streamName, streamARN, retentionHours, status}]}. */
export function listStreams(endpoint) {
  return post('api/streams/list', { ...endpoint });
}

/** DescribeMediaStorageConfiguration -> {status: 'ENABLED'|'DISABLED', streamARN}. */
export function describeStorage(channelName, endpoint) {
  return post('api/storage/describe', { channelName, ...endpoint });
}

/**
 * UpdateMediaStorageConfiguration: the channel records into streamName;
 * an empty stream name disables it (as on the official page).
 */
export function updateStorage(channelName, streamName, endpoint) {
  return post('api/storage/update', { channelName, streamName, ...endpoint });
}

/** The channels whose media storage is enabled -> {channels: [{channelName, channelARN, streamARN}]}. */
export function listStorageChannels(endpoint) {
  return post('api/storage/channels', { ...endpoint });
}

/** JoinStorageSession (role master) or JoinStorageSessionAsViewer (role viewer, with clientId). */
export function joinStorageSession(params) {
  return post('api/storage/join', params);
}

/**
 * A playback session URL: params {protocol: 'hls'|'dash', streamName,
 * playbackMode, containerFormat, start, end (ISO times or ''), maxResults,
 * expires} -> {url, expiresAt}.
 */
export function playbackURL(params) {
  return post('api/playback/session', params);
}

/**
 * GetClip of [start, end] of a stream: resolves to {blob, fileName}, the
 * MP4 the backend fetched.
 */
export async function fetchClip(params) {
  const res = await fetch('api/playback/clip', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.error || `api/playback/clip: HTTP ${res.status}`);
  }
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return { blob: await res.blob(), fileName: m ? m[1] : 'clip.mp4' };
}
