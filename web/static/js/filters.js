// filters.js: what the page lets through, as the official 2.9.0 page's
// "Advanced" section decides it: ICE candidates sent to and accepted from
// the peer (by type and protocol), the TURN URLs used, and the codecs
// offered. Pure functions, so that they can be checked on their own.

/** The candidate types and protocols the filters name. */
export const CANDIDATE_TYPES = ['host', 'srflx', 'relay', 'prflx'];
export const CANDIDATE_PROTOCOLS = ['udp', 'tcp'];

/**
 * Parses a candidate line ("candidate:..." or "a=candidate:...") into
 * {type, protocol, address, port}; fields it cannot read are ''.
 */
export function parseCandidate(line) {
  // candidate:<foundation> <component> <protocol> <priority> <address> <port> typ <type> ...
  const f = String(line || '').replace(/^a=/, '').trim().split(/\s+/);
  const typ = f.indexOf('typ');
  return {
    protocol: (f[2] || '').toLowerCase(),
    address: (f[4] || '').replace(/^\[|\]$/g, ''),
    port: f[5] || '',
    type: typ > 0 && f[typ + 1] ? f[typ + 1].toLowerCase() : '',
  };
}

/** Reports whether a candidate line's address is on the loopback interface. */
export function isLoopbackCandidate(line) {
  const { address } = parseCandidate(line);
  return /^127\./.test(address) || address === '::1';
}

/**
 * Returns a predicate on candidate lines for one direction ('send' or
 * 'accept'): a candidate passes when its type and its protocol are both
 * allowed, e.g. cfg.sendHost and cfg.sendUdp for a host UDP candidate
 * sent to the peer. A field left undefined allows. With
 * cfg.candidateFilter 'loopback' only 127.0.0.0/8 and ::1 candidates pass
 * too (for tests on one machine).
 */
export function candidatePredicate(cfg, dir) {
  const allowed = (name) => cfg[dir + name[0].toUpperCase() + name.slice(1)] !== false;
  return (line) => {
    const c = parseCandidate(line);
    if (c.type && CANDIDATE_TYPES.includes(c.type) && !allowed(c.type)) return false;
    if (c.protocol && CANDIDATE_PROTOCOLS.includes(c.protocol) && !allowed(c.protocol)) return false;
    if (cfg.candidateFilter === 'loopback' && !isLoopbackCandidate(line)) return false;
    return true;
  };
}

/** Removes the a=candidate lines that keep() refuses from an SDP. */
export function filterSdp(sdp, keep) {
  return String(sdp || '')
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || keep(l))
    .join('\r\n');
}

/**
 * Classifies a TURN URL as the official page's switches do: 'turn-udp',
 * 'turn-tcp', 'turns-udp', 'turns-tcp', or '' for a STUN or other URL. A
 * turn: URL without a transport is UDP, a turns: one TCP (RFC 7065).
 */
export function turnKind(url) {
  const m = /^(turns?):[^?]*(?:\?transport=(udp|tcp))?/i.exec(String(url || ''));
  if (!m) return '';
  const scheme = m[1].toLowerCase();
  const transport = (m[2] || (scheme === 'turns' ? 'tcp' : 'udp')).toLowerCase();
  return `${scheme}-${transport}`;
}

/**
 * Applies the TURN switches to RTCIceServer objects: cfg.turnUdp,
 * cfg.turnTcp, cfg.turnsUdp and cfg.turnsTcp keep or drop each kind of
 * TURN URL (undefined keeps it); cfg.turnOneSet keeps only the first set
 * of TURN servers: GetIceServerConfig returns two sets with the same URLs,
 * each with its own credentials, so a set is the servers sharing a
 * username and credential. STUN servers pass untouched; a TURN server left
 * with no URL goes.
 */
export function filterIceServers(servers, cfg) {
  const keep = {
    'turn-udp': cfg.turnUdp !== false,
    'turn-tcp': cfg.turnTcp !== false,
    'turns-udp': cfg.turnsUdp !== false,
    'turns-tcp': cfg.turnsTcp !== false,
  };
  const out = [];
  let firstSet = null;
  for (const s of servers || []) {
    const urls = [].concat(s.urls || []);
    const isTurn = urls.some((u) => turnKind(u));
    if (!isTurn) {
      out.push(s);
      continue;
    }
    const set = `${s.username || ''}\u0000${s.credential || ''}`;
    if (firstSet === null) firstSet = set;
    if (cfg.turnOneSet && set !== firstSet) continue;
    const kept = urls.filter((u) => !turnKind(u) || keep[turnKind(u)]);
    if (kept.length === 0) continue;
    out.push({ ...s, urls: kept });
  }
  return out;
}

/**
 * The H.264 variant the page offers: constrained baseline, level 3.1,
 * packetization-mode 1, what every KVS master (C SDK, pion) answers. Chrome
 * lists six H.264 variants; all of them, plus the rest, can push an offer
 * without trickle ICE over the 10 KB payload limit.
 */
export function isOfferedH264(codec) {
  const f = codec.sdpFmtpLine || '';
  return /profile-level-id=42e01f/i.test(f) && /packetization-mode=1/.test(f);
}

/**
 * The codecs allowed by default, as the 2.9.0 viewer offers them: VP8,
 * H.264, H.265 (when the browser has it) and their retransmissions (RTX)
 * for video, Opus for audio.
 */
export const DEFAULT_CODECS = ['video/VP8', 'video/H264', 'video/H265', 'video/rtx', 'audio/opus'];

/** The mimeTypes of a capability list, once each, in its order. */
export function codecMimeTypes(codecs) {
  const seen = new Set();
  const out = [];
  for (const c of codecs || []) {
    const m = c.mimeType;
    if (!seen.has(m.toLowerCase())) {
      seen.add(m.toLowerCase());
      out.push(m);
    }
  }
  return out;
}

/**
 * Picks from a capability list the codecs whose mimeType is in allowed
 * (compared without case); H.264 is the one variant isOfferedH264 names.
 * Returns [] when no media codec is left (only RTX, RED or FEC), which
 * setCodecPreferences would refuse.
 */
export function pickCodecs(codecs, allowed) {
  const set = new Set((allowed || []).map((m) => m.toLowerCase()));
  const keep = (codecs || []).filter((c) => {
    const m = c.mimeType.toLowerCase();
    if (!set.has(m)) return false;
    if (m === 'video/h264') return isOfferedH264(c);
    return true;
  });
  const media = keep.filter((c) => !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
  return media.length ? keep : [];
}

/** Base64 bytes of a description as a signaling payload. */
export function payloadSize(desc) {
  return Math.ceil(new TextEncoder().encode(JSON.stringify(desc)).length / 3) * 4;
}

// Header extensions and feedback a media section cannot do without: the
// MID (BUNDLE demultiplexing), transport-wide congestion control, NACK and
// picture loss indication.
const KEEP_EXTMAP = /urn:ietf:params:rtp-hdrext:sdes:mid|transport-wide-cc/;
const KEEP_FB = / (nack|transport-cc)( pli)?$/;

/**
 * Shrinks an SDP for the 10 KB payload limit of KVS signaling. Level 1
 * removes the header extensions and feedback lines of inactive media
 * sections (which carry nothing); level 2 also keeps only the essential
 * ones (MID, transport-cc, NACK, PLI) in every media section after the
 * first of its kind, as a multi-track offer has. The peer answers without
 * the removed ones, which the browser then does not use.
 */
export function compactSdp(sdp, level) {
  const sections = String(sdp).split(/\r\n(?=m=)/);
  const seenKind = new Set();
  return sections
    .map((sec, i) => {
      if (i === 0) return sec;
      const kind = sec.slice(2, sec.indexOf(' '));
      const first = !seenKind.has(kind);
      seenKind.add(kind);
      const inactive = /\r\na=inactive(\r\n|$)/.test(sec);
      const strip = inactive || (level >= 2 && !first);
      if (!strip) return sec;
      return sec
        .split('\r\n')
        .filter((l) => {
          if (l.startsWith('a=extmap:')) return !inactive && KEEP_EXTMAP.test(l);
          if (l.startsWith('a=rtcp-fb:')) return !inactive && KEEP_FB.test(l);
          return true;
        })
        .join('\r\n');
    })
    .join('\r\n');
}
