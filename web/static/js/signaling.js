// signaling.js: a small KVS WebRTC signaling client for the browser.
//
// It speaks the KVS signaling WebSocket protocol directly (docs/protocol.md,
// "Frames"): frames {action, messagePayload (base64 of JSON),
// recipientClientId?, correlationId?} go out; frames {messageType,
// messagePayload, senderClientId?, statusResponse?} come in.
//
// The client never sees AWS credentials: getSignedURL() asks the page's
// backend for a freshly presigned URL on every (re)connect.

const ACTIONS = {
  offer: 'SDP_OFFER',
  answer: 'SDP_ANSWER',
  candidate: 'ICE_CANDIDATE',
};

// The key under which candidates from the master (no senderClientId) are buffered.
const MASTER_KEY = '\u0000master';

// Send rates kept a little under the service limits (docs/protocol.md, "Limits":
// 5 SDP and 20 ICE messages per second per connection), so that a burst of
// candidates is paced instead of refused with ClientLimitExceededException.
const RATES = { SDP: { rate: 4.5, burst: 4 }, ICE: { rate: 18, burst: 15 } };

/** A token bucket. */
class Bucket {
  constructor({ rate, burst }) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = performance.now();
  }

  /** Returns 0 and takes a token, or the milliseconds until one is free. */
  take() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}

/** Encodes a JS value as base64 of its UTF-8 JSON. */
export function encodePayload(obj) {
  const bytes = new TextEncoder().encode(JSON.stringify(obj));
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Decodes base64 of UTF-8 JSON; throws on bad input. */
export function decodePayload(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * SignalingClient connects to KVS signaling as master or viewer.
 *
 * Events (subscribe with on(name, fn)):
 *   open()                          the WebSocket is open
 *   sdpOffer(offer, senderClientId) an SDP offer (master side)
 *   sdpAnswer(answer, senderClientId)
 *   iceCandidate(candidate, senderClientId) delivered only after that sender's SDP
 *   statusResponse(status)          a STATUS_RESPONSE for a failed message
 *   goAway()                        the service asked us to reconnect (done automatically)
 *   reconnectIceServer()            ICE servers retired (reconnects automatically)
 *   reconnecting(attempt, delayMs)
 *   close(event)                    the socket closed
 *   ended(event)                    closed for good: reconnect is off
 *   error(err)
 */
export class SignalingClient {
  /**
   * @param {object} opts
   * @param {'MASTER'|'VIEWER'} opts.role
   * @param {string} [opts.clientId] required for VIEWER
   * @param {(reason:string) => Promise<string>} opts.getSignedURL returns a presigned ws(s):// URL
   * @param {object} [opts.log] {debug, info, warn, error}
   * @param {boolean} [opts.reconnect] reconnect after the socket closes (true by default;
   *   GO_AWAY and RECONNECT_ICE_SERVER reconnect always)
   * @param {boolean} [opts.allowNoRecipient] lets a master send without naming a recipient:
   *   its messages to the KVS media server in WebRTC ingestion mode
   */
  constructor({ role, clientId, getSignedURL, log, reconnect = true, allowNoRecipient = false }) {
    if (role !== 'MASTER' && role !== 'VIEWER') throw new Error(`signaling: role must be MASTER or VIEWER, got ${role}`);
    if (role === 'VIEWER' && !clientId) throw new Error('signaling: clientId is required for a viewer');
    if (typeof getSignedURL !== 'function') throw new Error('signaling: getSignedURL must be a function');
    this.role = role;
    this.clientId = clientId;
    this.getSignedURL = getSignedURL;
    this.reconnect = reconnect;
    this.allowNoRecipient = allowNoRecipient;
    this.log = log || { debug() {}, info() {}, warn() {}, error() {} };
    this.handlers = new Map();
    this.ws = null;
    this.closedByUser = true;
    this.attempt = 0;
    this.retryTimer = null;
    this.correlation = 0;
    this.queue = [];
    this.pumpTimer = null;
    this.buckets = { SDP: new Bucket(RATES.SDP), ICE: new Bucket(RATES.ICE) };
    this.resetIceCandidateState();
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, []);
    this.handlers.get(name).push(fn);
    return this;
  }

  emit(name, ...args) {
    for (const fn of this.handlers.get(name) || []) {
      try {
        fn(...args);
      } catch (e) {
        this.log.error(`signaling: ${name} handler threw: ${e && e.message}`);
      }
    }
  }

  /** Forgets which senders have sent SDP and drops buffered candidates. */
  resetIceCandidateState() {
    this.pendingIce = new Map();
    this.sdpSeen = new Set();
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Opens the connection (resolves when the socket is open). */
  async open() {
    this.closedByUser = false;
    await this.connect('open');
  }

  async connect(reason) {
    const url = await this.getSignedURL(reason);
    if (this.closedByUser) return;
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(url);
      this.ws = ws;
      ws.onopen = () => {
        this.attempt = 0;
        settled = true;
        this.log.info(`signaling: connected as ${this.role}${this.clientId && this.role === 'VIEWER' ? ' ' + this.clientId : ''}`);
        this.emit('open');
        resolve();
      };
      ws.onmessage = (ev) => this.onFrame(ev.data);
      ws.onerror = () => {
        // The close event follows with the details the browser allows us to see.
        this.log.debug('signaling: socket error');
      };
      ws.onclose = (ev) => {
        if (this.ws === ws) {
          this.ws = null;
          this.dropQueue();
        }
        this.log.info(`signaling: closed (code ${ev.code}${ev.reason ? ', ' + ev.reason : ''})`);
        this.emit('close', ev);
        if (!settled) {
          settled = true;
          reject(new Error(`signaling: connection failed (code ${ev.code})`));
          return;
        }
        if (!this.closedByUser && !ws.replaced) {
          if (this.reconnect) this.scheduleReconnect('closed');
          else {
            this.log.warn('signaling: closed and not reopened (signaling reconnect is off)');
            this.emit('ended', ev);
          }
        }
      };
    });
  }

  scheduleReconnect(reason) {
    if (this.closedByUser || this.retryTimer) return;
    // Exponential backoff from 100 ms to 10 s with full jitter, as the C SDK.
    const cap = Math.min(10000, 100 * 2 ** this.attempt);
    const delay = Math.floor(Math.random() * cap);
    this.attempt++;
    this.emit('reconnecting', this.attempt, delay);
    this.log.info(`signaling: reconnecting (${reason}) in ${delay} ms, attempt ${this.attempt}`);
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = null;
      try {
        await this.connect(reason);
      } catch (e) {
        this.log.warn(`signaling: reconnect failed: ${e.message}`);
        this.scheduleReconnect(reason);
      }
    }, delay);
  }

  /** Replaces the socket at once with a new one on a fresh signed URL. */
  reconnectNow(reason) {
    const old = this.ws;
    if (old) {
      old.replaced = true;
      try {
        old.close(1000, reason);
      } catch (_) {}
      this.ws = null;
    }
    this.attempt = 0;
    this.connect(reason).catch((e) => {
      this.log.warn(`signaling: reconnect failed: ${e.message}`);
      this.scheduleReconnect(reason);
    });
  }

  /** Closes the connection and stops reconnecting. */
  close() {
    this.closedByUser = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) {
      try {
        this.ws.close(1000, 'client closed');
      } catch (_) {}
    }
    this.ws = null;
    this.dropQueue();
    this.resetIceCandidateState();
  }

  dropQueue() {
    if (this.queue.length) this.log.warn(`signaling: ${this.queue.length} queued message(s) dropped: the connection closed`);
    this.queue = [];
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
  }

  pump() {
    this.pumpTimer = null;
    while (this.queue.length) {
      const head = this.queue[0];
      const wait = this.buckets[head.kind].take();
      if (wait > 0) {
        this.pumpTimer = setTimeout(() => this.pump(), wait);
        return;
      }
      this.queue.shift();
      if (!this.isOpen) {
        this.dropQueue();
        return;
      }
      this.ws.send(head.text);
    }
  }

  onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      this.log.warn('signaling: dropped a frame that is not JSON');
      return;
    }
    const type = msg.messageType;
    const sender = msg.senderClientId || undefined;
    if (type === 'GO_AWAY') {
      this.log.info('signaling: GO_AWAY received, reconnecting with a fresh signed URL');
      this.emit('goAway');
      this.reconnectNow('goAway');
      return;
    }
    if (type === 'RECONNECT_ICE_SERVER') {
      this.log.info('signaling: RECONNECT_ICE_SERVER received');
      this.emit('reconnectIceServer');
      this.reconnectNow('reconnectIceServer');
      return;
    }
    if (type === 'STATUS_RESPONSE') {
      const st = msg.statusResponse || {};
      this.log.warn(`signaling: STATUS_RESPONSE ${st.statusCode || ''} ${st.errorType || ''} ${st.description || ''} (correlationId ${st.correlationId || '-'})`);
      this.emit('statusResponse', st);
      return;
    }
    if (!msg.messagePayload) {
      if (msg.statusResponse) {
        this.emit('statusResponse', msg.statusResponse);
        return;
      }
      this.log.warn(`signaling: dropped a ${type || 'untyped'} frame without payload`);
      return;
    }
    let payload;
    try {
      payload = decodePayload(msg.messagePayload);
    } catch (_) {
      this.log.warn(`signaling: dropped a ${type} frame whose payload does not decode`);
      return;
    }
    const key = sender || MASTER_KEY;
    switch (type) {
      case 'SDP_OFFER':
        this.emit('sdpOffer', payload, sender);
        this.markSdp(key, sender);
        break;
      case 'SDP_ANSWER':
        this.emit('sdpAnswer', payload, sender);
        this.markSdp(key, sender);
        break;
      case 'ICE_CANDIDATE':
        if (this.sdpSeen.has(key)) {
          this.emit('iceCandidate', payload, sender);
        } else {
          // Early candidate: keep it until this sender's SDP has been delivered.
          if (!this.pendingIce.has(key)) this.pendingIce.set(key, []);
          this.pendingIce.get(key).push(payload);
          this.log.debug(`signaling: buffered an early ICE candidate from ${sender || 'master'}`);
        }
        break;
      default:
        this.log.warn(`signaling: dropped a frame of unknown type ${type}`);
    }
  }

  markSdp(key, sender) {
    this.sdpSeen.add(key);
    const buffered = this.pendingIce.get(key);
    this.pendingIce.delete(key);
    for (const c of buffered || []) this.emit('iceCandidate', c, sender);
  }

  send(action, payload, recipientClientId) {
    if (!this.isOpen) throw new Error('signaling: not connected');
    const frame = { action, messagePayload: encodePayload(payload) };
    if (this.role === 'MASTER') {
      if (recipientClientId) frame.recipientClientId = recipientClientId;
      else if (!this.allowNoRecipient) throw new Error('signaling: the master must name the recipient viewer');
    } else if (recipientClientId) {
      throw new Error('signaling: a viewer must not name a recipient');
    }
    frame.correlationId = `${Date.now()}.${++this.correlation}`;
    // Frames leave in order, paced per kind to stay under the service's rates.
    this.queue.push({ kind: action === ACTIONS.candidate ? 'ICE' : 'SDP', text: JSON.stringify(frame) });
    if (!this.pumpTimer) this.pump();
  }

  sendSdpOffer(desc, recipientClientId) {
    this.send(ACTIONS.offer, { type: desc.type, sdp: desc.sdp }, recipientClientId);
  }

  sendSdpAnswer(desc, recipientClientId) {
    this.send(ACTIONS.answer, { type: desc.type, sdp: desc.sdp }, recipientClientId);
  }

  sendIceCandidate(candidate, recipientClientId) {
    const c = typeof candidate.toJSON === 'function' ? candidate.toJSON() : candidate;
    this.send(ACTIONS.candidate, c, recipientClientId);
  }
}
