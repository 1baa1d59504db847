// player.js: plays a recording's HLS or DASH session URL in a <video>:
// natively when the browser plays HLS itself, else through Media Source
// Extensions with this small loader (fragmented MP4 only: an HLS media
// playlist with EXT-X-MAP, or a DASH MPD with a SegmentList). No library,
// no CDN.

/** Parses an HLS attribute list (KEY=VALUE,KEY="V,ALUE") into an object. */
export function parseAttributes(s) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  let m;
  while ((m = re.exec(s))) out[m[1]] = m[2].replace(/^"|"$/g, '');
  return out;
}

/**
 * Parses an HLS playlist. A master playlist gives {variants: [{uri,
 * codecs, bandwidth, resolution}]}; a media playlist {targetDuration,
 * mediaSequence, endList, playlistType, segments: [{uri, duration, seq,
 * discontinuity, map}]}, each segment's map the URI of its EXT-X-MAP.
 * URIs are resolved against base.
 */
export function parsePlaylist(text, base) {
  const lines = String(text).split(/\r?\n/).map((l) => l.trim());
  if (lines[0] !== '#EXTM3U') throw new Error('not an HLS playlist (no #EXTM3U)');
  const abs = (u) => new URL(u, base).toString();
  const out = { variants: [], segments: [], targetDuration: 0, mediaSequence: 0, endList: false, playlistType: '' };
  let pending = null;
  let map = '';
  let seq = 0;
  let disc = false;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (!l) continue;
    if (l.startsWith('#EXT-X-STREAM-INF:')) {
      const a = parseAttributes(l.slice(18));
      const uri = lines[++i];
      out.variants.push({ uri: abs(uri), codecs: a.CODECS || '', bandwidth: Number(a.BANDWIDTH) || 0, resolution: a.RESOLUTION || '' });
    } else if (l.startsWith('#EXT-X-TARGETDURATION:')) {
      out.targetDuration = Number(l.slice(22));
    } else if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) {
      out.mediaSequence = seq = Number(l.slice(22));
    } else if (l.startsWith('#EXT-X-PLAYLIST-TYPE:')) {
      out.playlistType = l.slice(21);
    } else if (l === '#EXT-X-ENDLIST') {
      out.endList = true;
    } else if (l === '#EXT-X-DISCONTINUITY') {
      disc = true;
    } else if (l.startsWith('#EXT-X-MAP:')) {
      map = abs(parseAttributes(l.slice(11)).URI);
    } else if (l.startsWith('#EXTINF:')) {
      pending = Number(l.slice(8).split(',')[0]);
    } else if (!l.startsWith('#')) {
      out.segments.push({ uri: abs(l), duration: pending || 0, seq: seq++, discontinuity: disc, map });
      pending = null;
      disc = false;
    }
  }
  return out;
}

/**
 * Parses a DASH MPD whose Representations use a SegmentList (one per
 * track, or one muxed): {dynamic, updateSeconds, reps: [{id, mimeType,
 * codecs, init, segments: [uri]}]}, URIs resolved against base (and the
 * MPD's BaseURL).
 */
export function parseMPD(text, base) {
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  const mpd = doc.documentElement;
  if (!mpd || mpd.localName !== 'MPD') throw new Error('not a DASH MPD');
  const first = (root, name) => root.getElementsByTagNameNS('*', name)[0] || null;
  let b = base;
  const baseURL = first(mpd, 'BaseURL');
  if (baseURL && baseURL.textContent.trim()) b = new URL(baseURL.textContent.trim(), base).toString();
  const reps = [];
  for (const aset of mpd.getElementsByTagNameNS('*', 'AdaptationSet')) {
    for (const rep of aset.getElementsByTagNameNS('*', 'Representation')) {
      const list = first(rep, 'SegmentList') || first(aset, 'SegmentList');
      if (!list) throw new Error('the MPD has no SegmentList (only SegmentList MPDs are played here)');
      const init = first(list, 'Initialization');
      reps.push({
        id: rep.getAttribute('id') || String(reps.length),
        mimeType: rep.getAttribute('mimeType') || aset.getAttribute('mimeType') || 'video/mp4',
        codecs: rep.getAttribute('codecs') || aset.getAttribute('codecs') || '',
        init: init ? new URL(init.getAttribute('sourceURL'), b).toString() : '',
        segments: [...list.getElementsByTagNameNS('*', 'SegmentURL')].map((s) => new URL(s.getAttribute('media'), b).toString()),
      });
    }
  }
  if (!reps.length) throw new Error('the MPD has no Representation');
  const dur = /PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?/.exec(mpd.getAttribute('minimumUpdatePeriod') || '');
  const upd = dur ? Number(dur[1] || 0) * 3600 + Number(dur[2] || 0) * 60 + Number(dur[3] || 0) : 0;
  return { dynamic: mpd.getAttribute('type') === 'dynamic', updateSeconds: upd, reps };
}

/** Reports whether the browser plays HLS by itself. */
export function canPlayNativeHLS(video) {
  return !!video.canPlayType && video.canPlayType('application/vnd.apple.mpegurl') !== '';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Player plays one session URL at a time in a video element. Its fields
 * tell tests what happened: how ('native' or 'mse'), state ('idle',
 * 'loading', 'playing', 'ended', 'error'), error, segments (appended),
 * playlists (fetched).
 */
export class Player {
  constructor(video, log) {
    this.video = video;
    this.log = log || { debug() {}, info() {}, warn() {}, error() {} };
    this.reset();
  }

  reset() {
    this.how = '';
    this.state = 'idle';
    this.error = '';
    this.segments = 0;
    this.playlists = 0;
    this.url = '';
  }

  /** Stops playback and frees the element. */
  stop() {
    this.gen = (this.gen || 0) + 1;
    clearInterval(this.gapTimer);
    this.gapTimer = null;
    const v = this.video;
    v.pause();
    v.removeAttribute('src');
    v.load();
    if (this.objectURL) URL.revokeObjectURL(this.objectURL);
    this.objectURL = null;
    this.reset();
  }

  /**
   * Plays url: protocol 'hls' or 'dash'; how 'auto' (native HLS when the
   * browser has it, else MSE), 'native' or 'mse'.
   */
  async play(url, { protocol = 'hls', how = 'auto' } = {}) {
    this.stop();
    const gen = this.gen;
    this.url = url;
    this.state = 'loading';
    const native = protocol === 'hls' && (how === 'native' || (how === 'auto' && canPlayNativeHLS(this.video)));
    try {
      if (native) {
        this.how = 'native';
        this.log.info('playback: native HLS');
        this.video.src = url;
        await this.video.play().catch((e) => this.log.debug(`video.play(): ${e.message}`));
        this.state = 'playing';
        return;
      }
      if (!window.MediaSource) throw new Error('this browser has no Media Source Extensions');
      this.how = 'mse';
      this.log.info(`playback: ${protocol.toUpperCase()} through Media Source Extensions`);
      await (protocol === 'dash' ? this.runDASH(url, gen) : this.runHLS(url, gen));
    } catch (e) {
      if (gen !== this.gen) return;
      this.state = 'error';
      this.error = e.message;
      this.log.error(`playback: ${e.message}`);
    }
  }

  async fetchText(url) {
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) {
      const body = await res.text().catch(() => '');
      throw new Error(`${new URL(url).pathname}: HTTP ${res.status} ${body.slice(0, 200)}`);
    }
    return res.text();
  }

  async fetchBytes(url) {
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${new URL(url).pathname}: HTTP ${res.status}`);
    return res.arrayBuffer();
  }

  /**
   * Opens a MediaSource on the element with a SourceBuffer per mime type
   * (one muxed, or one per track); this.sb is the first.
   */
  async openSource(mimes, gen) {
    mimes = [].concat(mimes);
    for (const m of mimes) if (!MediaSource.isTypeSupported(m)) throw new Error(`the browser cannot play ${m}`);
    const ms = new MediaSource();
    this.mediaSource = ms;
    this.objectURL = URL.createObjectURL(ms);
    this.video.src = this.objectURL;
    await new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
    if (gen !== this.gen) throw new Error('stopped');
    this.buffers = mimes.map((m) => {
      const sb = ms.addSourceBuffer(m);
      sb.mode = 'segments';
      return sb;
    });
    this.sb = this.buffers[0];
    this.startGapJumper();
    return this.buffers;
  }

  async append(buf, gen, sb = this.sb) {
    if (gen !== this.gen) throw new Error('stopped');
    await this.trim(sb);
    await new Promise((resolve, reject) => {
      const ok = () => {
        sb.removeEventListener('error', bad);
        resolve();
      };
      const bad = () => {
        sb.removeEventListener('updateend', ok);
        reject(new Error('the browser refused a segment (SourceBuffer error)'));
      };
      sb.addEventListener('updateend', ok, { once: true });
      sb.addEventListener('error', bad, { once: true });
      sb.appendBuffer(buf);
    });
  }

  /** Drops what is more than 60 s behind the playhead, so that long recordings fit. */
  async trim(sb) {
    const t = this.video.currentTime;
    if (!sb.buffered.length || sb.buffered.start(0) > t - 60) return;
    await new Promise((resolve) => {
      sb.addEventListener('updateend', resolve, { once: true });
      sb.remove(0, t - 30);
    });
  }

  /** Starts the element at the first buffered time once data is there. */
  kick() {
    const v = this.video;
    const b = this.video.buffered.length ? this.video.buffered : this.sb && this.sb.buffered;
    if (b && b.length && (v.currentTime < b.start(0) || v.currentTime > b.end(b.length - 1))) v.currentTime = b.start(0);
    if (v.paused) v.play().catch((e) => this.log.debug(`video.play(): ${e.message}`));
    this.state = 'playing';
  }

  /** Jumps over holes between buffered ranges (a recording that paused). */
  startGapJumper() {
    clearInterval(this.gapTimer);
    this.gapTimer = setInterval(() => {
      const v = this.video;
      const b = v.buffered;
      if (!b || !b.length) return;
      for (let i = 0; i < b.length; i++) {
        if (v.currentTime < b.start(i) && (i === 0 || v.currentTime >= b.end(i - 1) - 0.1)) {
          this.log.debug(`playback: jumping a gap ${v.currentTime.toFixed(2)} -> ${b.start(i).toFixed(2)}`);
          v.currentTime = b.start(i) + 0.01;
          return;
        }
      }
    }, 500);
  }

  finish() {
    if (this.mediaSource && this.mediaSource.readyState === 'open') {
      try {
        this.mediaSource.endOfStream();
      } catch (_) {}
    }
    this.state = 'ended';
    this.log.info(`playback: the recording ends (${this.segments} segments)`);
  }

  async runHLS(url, gen) {
    let text = await this.fetchText(url);
    this.playlists++;
    let pl = parsePlaylist(text, url);
    let codecs = 'avc1.42e01f,opus';
    let mediaURL = url;
    if (pl.variants.length) {
      codecs = pl.variants[0].codecs || codecs;
      mediaURL = pl.variants[0].uri;
      pl = null;
    }
    const sb = await this.openSource(`video/mp4; codecs="${codecs}"`, gen);
    void sb;
    let lastSeq = -1;
    let lastMap = '';
    for (;;) {
      if (!pl) {
        text = await this.fetchText(mediaURL);
        this.playlists++;
        pl = parsePlaylist(text, mediaURL);
      }
      for (const s of pl.segments) {
        if (s.seq <= lastSeq) continue;
        if (!s.map) throw new Error('the media playlist has no EXT-X-MAP: only fragmented MP4 plays through MSE (choose FRAGMENTED_MP4)');
        if (s.map !== lastMap) {
          await this.append(await this.fetchBytes(s.map), gen);
          lastMap = s.map;
        }
        await this.append(await this.fetchBytes(s.uri), gen);
        this.segments++;
        lastSeq = s.seq;
        this.kick();
      }
      if (pl.endList) {
        this.finish();
        return;
      }
      await sleep(Math.max(1000, (pl.targetDuration || 2) * 500));
      if (gen !== this.gen) return;
      pl = null;
    }
  }

  async runDASH(url, gen) {
    let mpd = parseMPD(await this.fetchText(url), url);
    this.playlists++;
    const reps = mpd.reps;
    const buffers = await this.openSource(reps.map((r) => `${r.mimeType}; codecs="${r.codecs || 'avc1.42e01f,opus'}"`), gen);
    for (let i = 0; i < reps.length; i++) await this.append(await this.fetchBytes(reps[i].init), gen, buffers[i]);
    const seen = reps.map(() => new Set()); // segment URLs appended, per representation
    for (;;) {
      // The representations' segments go in together, position by
      // position (a live MPD's window moves: URLs tell what is new).
      const n = Math.min(...mpd.reps.map((r) => r.segments.length));
      for (let k = 0; k < n; k++) {
        let added = false;
        for (let i = 0; i < reps.length && i < mpd.reps.length; i++) {
          const u = mpd.reps[i].segments[k];
          if (seen[i].has(u)) continue;
          await this.append(await this.fetchBytes(u), gen, buffers[i]);
          seen[i].add(u);
          added = true;
        }
        if (added) {
          this.segments++;
          this.kick();
        }
      }
      if (!mpd.dynamic) {
        this.finish();
        return;
      }
      await sleep(Math.max(1000, (mpd.updateSeconds || 2) * 1000));
      if (gen !== this.gen) return;
      mpd = parseMPD(await this.fetchText(url), url);
      this.playlists++;
    }
  }
}
