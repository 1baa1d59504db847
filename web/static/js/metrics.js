// metrics.js: the viewer's quality metrics as the official 2.9.0 page's
// DQP panel shows them (decoded fps, frames dropped %, video and audio
// bitrates, round-trip time, jitter, each now and averaged since the first
// frame), and the profiling timeline of both sides: the viewer's steps and
// the master's, which the master sends over the data channel.

/** The quality rows, in the order the panel shows them. */
export const QUALITY_ROWS = [
  { key: 'fps', label: 'Decoded FPS', unit: 'fps' },
  { key: 'dropPct', label: 'Frames dropped', unit: '%' },
  { key: 'videoKbps', label: 'Video bitrate', unit: 'kbps' },
  { key: 'audioKbps', label: 'Audio bitrate', unit: 'kbps' },
  { key: 'rttMs', label: 'Round-trip time', unit: 'ms' },
  { key: 'videoJitterMs', label: 'Video jitter', unit: 'ms' },
  { key: 'audioJitterMs', label: 'Audio jitter', unit: 'ms' },
];

/**
 * QualityMeter turns successive getStats() reports of the viewer's peer
 * connection into the quality rows: sample(report) returns
 * {fps, dropPct, videoKbps, audioKbps, rttMs, videoJitterMs,
 * audioJitterMs} for the last interval, and averages() their means over
 * every sample taken since the video started.
 */
export class QualityMeter {
  constructor() {
    this.prev = null;
    this.sums = {};
    this.counts = {};
    this.last = null;
  }

  sample(report) {
    const cur = { t: 0, vBytes: 0, aBytes: 0, decoded: 0, dropped: 0, received: 0, fps: null, vJitter: null, aJitter: null, rtt: null };
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        cur.t = Math.max(cur.t, s.timestamp);
        cur.vBytes += s.bytesReceived || 0;
        cur.decoded += s.framesDecoded || 0;
        cur.dropped += s.framesDropped || 0;
        cur.received += s.framesReceived || 0;
        if (typeof s.framesPerSecond === 'number') cur.fps = (cur.fps || 0) + s.framesPerSecond;
        if (typeof s.jitter === 'number') cur.vJitter = Math.max(cur.vJitter || 0, s.jitter * 1000);
      } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        cur.t = Math.max(cur.t, s.timestamp);
        cur.aBytes += s.bytesReceived || 0;
        if (typeof s.jitter === 'number') cur.aJitter = Math.max(cur.aJitter || 0, s.jitter * 1000);
      } else if (s.type === 'candidate-pair' && (s.id === pairId || (!pairId && s.nominated && s.state === 'succeeded'))) {
        if (typeof s.currentRoundTripTime === 'number') cur.rtt = s.currentRoundTripTime * 1000;
      }
    });
    const prev = this.prev;
    this.prev = cur;
    if (!prev || !(cur.t > prev.t)) return this.last;
    const dt = (cur.t - prev.t) / 1000;
    const dRecv = cur.received - prev.received;
    const dDrop = cur.dropped - prev.dropped;
    const out = {
      fps: cur.fps !== null ? cur.fps : (cur.decoded - prev.decoded) / dt,
      dropPct: dRecv > 0 ? Math.max(0, (100 * dDrop) / dRecv) : 0,
      videoKbps: ((cur.vBytes - prev.vBytes) * 8) / 1000 / dt,
      audioKbps: ((cur.aBytes - prev.aBytes) * 8) / 1000 / dt,
      rttMs: cur.rtt,
      videoJitterMs: cur.vJitter,
      audioJitterMs: cur.aJitter,
    };
    // Averages count from the first decoded frame on, as the official
    // page's test starts when the video plays.
    if (cur.decoded > 0) {
      for (const [k, v] of Object.entries(out)) {
        if (typeof v !== 'number' || !isFinite(v)) continue;
        this.sums[k] = (this.sums[k] || 0) + v;
        this.counts[k] = (this.counts[k] || 0) + 1;
      }
    }
    this.last = out;
    return out;
  }

  averages() {
    const out = {};
    for (const r of QUALITY_ROWS) out[r.key] = this.counts[r.key] ? this.sums[r.key] / this.counts[r.key] : null;
    return out;
  }

  /** How many samples the averages hold. */
  samples() {
    return Math.max(0, ...Object.values(this.counts));
  }
}

function fmt(v, unit) {
  if (typeof v !== 'number' || !isFinite(v)) return '-';
  const d = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(d)} ${unit}`;
}

/** Writes the quality table: one row per metric, now and average. */
export function renderQuality(table, now, avg) {
  if (!table) return;
  const rows = QUALITY_ROWS.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.metric = r.key;
    for (const text of [r.label, fmt(now && now[r.key], r.unit), fmt(avg && avg[r.key], r.unit)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  });
  const body = table.tBodies[0] || table.appendChild(document.createElement('tbody'));
  body.replaceChildren(...rows);
}

/** The message type the master's profile travels under on the data channel. */
export const PROFILE_MESSAGE = 'kvsProfile';

/**
 * Builds the profile message a master sends a viewer: its steps for that
 * viewer (and its own signaling steps) with their wall-clock times.
 */
export function profileMessage(steps) {
  return JSON.stringify({ type: PROFILE_MESSAGE, version: 1, master: { steps } });
}

/** Returns the master's steps from a data channel text, or null if it is not a profile. */
export function parseProfile(text) {
  if (typeof text !== 'string' || !text.startsWith('{')) return null;
  try {
    const m = JSON.parse(text);
    if (m && m.type === PROFILE_MESSAGE && m.master && Array.isArray(m.master.steps)) return m.master.steps;
  } catch (_) {}
  return null;
}

/**
 * Turns a list of steps {step, at (ISO time or epoch ms)} into spans: each
 * step runs from the step before it (or from its own time for the first)
 * to its time. Returns [{name, start, end}] in epoch ms.
 */
export function stepsToSpans(steps) {
  const times = (steps || [])
    .map((s) => ({ name: s.step + (s.detail ? ` (${s.detail})` : ''), t: typeof s.at === 'number' ? s.at : Date.parse(s.at) }))
    .filter((s) => isFinite(s.t))
    .sort((a, b) => a.t - b.t);
  return times.map((s, i) => ({ name: s.name, start: i ? times[i - 1].t : s.t, end: s.t }));
}

/**
 * Draws the profiling timeline into el: one row per side (viewer, master),
 * a bar per step on a shared wall-clock axis, labelled with the step and
 * its duration. rows: [{side, spans}].
 */
export function renderProfile(el, rows) {
  if (!el) return;
  const all = rows.flatMap((r) => r.spans);
  el.textContent = '';
  if (!all.length) {
    el.textContent = 'no steps yet';
    return;
  }
  const t0 = Math.min(...all.map((s) => s.start));
  const t1 = Math.max(...all.map((s) => s.end), t0 + 1);
  const pct = (t) => ((t - t0) / (t1 - t0)) * 100;
  const axis = document.createElement('div');
  axis.className = 'profile-axis';
  axis.textContent = `0 ms \u2026 ${Math.round(t1 - t0)} ms`;
  el.appendChild(axis);
  for (const r of rows) {
    for (const s of r.spans) {
      const row = document.createElement('div');
      row.className = `profile-row profile-${r.side}`;
      row.dataset.side = r.side;
      row.dataset.step = s.name;
      const label = document.createElement('span');
      label.className = 'profile-label';
      label.textContent = `${r.side}: ${s.name}`;
      const track = document.createElement('span');
      track.className = 'profile-track';
      const bar = document.createElement('span');
      bar.className = 'profile-bar';
      bar.style.left = `${pct(s.start)}%`;
      bar.style.width = `${Math.max(0.4, pct(s.end) - pct(s.start))}%`;
      bar.title = `${s.name}: ${Math.round(s.end - s.start)} ms (at +${Math.round(s.end - t0)} ms)`;
      const d = document.createElement('span');
      d.className = 'profile-ms';
      d.textContent = `${Math.round(s.end - s.start)} ms`;
      track.append(bar);
      row.append(label, track, d);
      el.appendChild(row);
    }
  }
}
