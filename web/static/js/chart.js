// chart.js: a small multi-series line chart on a <canvas>, no library.

export class StatsChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{key:string,label:string,unit:string,color:string}[]} series
   * @param {number} [points] how many samples are kept (one a second)
   */
  constructor(canvas, series, points = 60) {
    this.canvas = canvas;
    this.series = series;
    this.points = points;
    this.data = [];
  }

  push(sample) {
    this.data.push(sample);
    if (this.data.length > this.points) this.data.shift();
    this.draw();
  }

  reset() {
    this.data = [];
    this.draw();
  }

  draw() {
    const c = this.canvas;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 600;
    const h = c.clientHeight || 200;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.fillStyle = '#0f1720';
    g.fillRect(0, 0, w, h);

    const rows = this.series.length;
    const legendW = 150;
    const rowH = h / rows;
    g.font = '11px system-ui, sans-serif';
    this.series.forEach((s, i) => {
      const top = i * rowH;
      const vals = this.data.map((d) => d[s.key]).filter((v) => typeof v === 'number' && isFinite(v));
      const max = Math.max(1e-9, ...vals) * 1.15;
      // Grid line between rows.
      g.strokeStyle = '#233040';
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(0, top + rowH - 0.5);
      g.lineTo(w, top + rowH - 0.5);
      g.stroke();
      // Legend with the last value.
      const last = this.data.length ? this.data[this.data.length - 1][s.key] : undefined;
      g.fillStyle = s.color;
      g.fillText(s.label, 6, top + 14);
      g.fillStyle = '#c8d3df';
      g.fillText(last === undefined || last === null ? '-' : `${fmt(last)} ${s.unit}`, 6, top + 28);
      // Series.
      // The time axis fills from the left: the samples so far span the
      // whole width, and scroll once there are this.points of them.
      const x0 = legendW;
      const pw = w - x0 - 6;
      const step = pw / Math.max(1, this.data.length - 1);
      g.strokeStyle = s.color;
      g.lineWidth = 1.5;
      g.beginPath();
      let started = false;
      this.data.forEach((d, j) => {
        const v = d[s.key];
        if (typeof v !== 'number' || !isFinite(v)) {
          started = false;
          return;
        }
        const x = x0 + j * step;
        const y = top + rowH - 4 - (v / max) * (rowH - 10);
        if (!started) {
          g.moveTo(x, y);
          started = true;
        } else {
          g.lineTo(x, y);
        }
      });
      g.stroke();
    });
    // Time labels: how far back the left edge is, and now.
    const n = this.data.length;
    g.fillStyle = '#7d8b99';
    g.fillText(n > 1 ? `\u2212${n - 1} s` : '', legendW, h - 3);
    const now = 'now';
    g.fillText(now, w - 6 - g.measureText(now).width, h - 3);
  }

  /** The x position (CSS pixels) of sample i, for tests. */
  xOf(i) {
    const w = this.canvas.clientWidth || 600;
    return 150 + i * ((w - 150 - 6) / Math.max(1, this.data.length - 1));
  }
}

function fmt(v) {
  if (typeof v !== 'number') return String(v);
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * StatsSampler turns successive getStats() reports into per-second rates
 * for one RTCPeerConnection.
 */
export class StatsSampler {
  constructor() {
    this.prev = new Map();
  }

  /**
   * Returns {inKbps, outKbps, fps, packetsLost, rttMs, framesDecoded,
   * localCandidate, remoteCandidate, videoCodecIn, videoCodecOut}.
   */
  sample(report) {
    const out = { inKbps: 0, outKbps: 0, fps: null, packetsLost: 0, rttMs: null, framesDecoded: 0 };
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      const prev = this.prev.get(s.id);
      const dt = prev ? (s.timestamp - prev.timestamp) / 1000 : 0;
      if (s.type === 'inbound-rtp') {
        if (prev && dt > 0) out.inKbps += ((s.bytesReceived - prev.bytesReceived) * 8) / 1000 / dt;
        out.packetsLost += s.packetsLost || 0;
        if (s.kind === 'video') {
          const codec = report.get(s.codecId);
          if (codec) out.videoCodecIn = codec.mimeType;
          out.framesDecoded += s.framesDecoded || 0;
          if (typeof s.framesPerSecond === 'number') out.fps = (out.fps || 0) + s.framesPerSecond;
          else if (prev && dt > 0) out.fps = (out.fps || 0) + ((s.framesDecoded || 0) - (prev.framesDecoded || 0)) / dt;
        }
      } else if (s.type === 'outbound-rtp') {
        if (prev && dt > 0) out.outKbps += ((s.bytesSent - prev.bytesSent) * 8) / 1000 / dt;
        const codec = s.kind === 'video' && report.get(s.codecId);
        if (codec) out.videoCodecOut = codec.mimeType;
        if (s.kind === 'video' && out.fps === null && typeof s.framesPerSecond === 'number') out.sentFps = s.framesPerSecond;
      } else if (s.type === 'candidate-pair' && (s.id === pairId || (!pairId && s.nominated && s.state === 'succeeded'))) {
        if (typeof s.currentRoundTripTime === 'number') out.rttMs = s.currentRoundTripTime * 1000;
        const lc = report.get(s.localCandidateId);
        const rc = report.get(s.remoteCandidateId);
        if (lc) out.localCandidate = `${lc.candidateType} ${lc.address || lc.ip}:${lc.port} ${lc.protocol}`;
        if (rc) out.remoteCandidate = `${rc.candidateType} ${rc.address || rc.ip}:${rc.port} ${rc.protocol}`;
      }
    });
    if (out.fps === null && typeof out.sentFps === 'number') out.fps = out.sentFps;
    const next = new Map();
    report.forEach((s) => next.set(s.id, s));
    this.prev = next;
    return out;
  }
}
