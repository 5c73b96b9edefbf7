// A small live-HLS player over Media Source Extensions, for browsers that neither speak WebRTC
// nor play HLS natively (Chromium, Firefox, TV browsers): it polls the room's playlist once per
// target duration, fetches the MP3 segments it has not had yet, in order, and appends them to a
// SourceBuffer in `sequence` mode (each segment simply follows the last, whatever its ID3
// timestamp says). It starts near the live edge, trims what is well behind playback, retries a
// failed fetch on the next poll, and stops at `#EXT-X-ENDLIST`.
// The playlist reading at the top is pure (tests/web/hls.test.mjs runs it in node); the player
// below it touches only the media element it is given and the network. It must never play
// anything but MP3 packed audio, and never hold more than a minute of audio behind playback.

// ---------------------------------------------------------------- the playlist (pure)

/**
 * Reads a media playlist (RFC 8216). Returns `{targetDuration, mediaSequence, segments, ended}`
 * with `segments: [{seq, uri, duration}]`, or null when `text` is not a playlist. Unknown tags
 * and comments are skipped; a malformed number falls back to the RFC's default.
 */
export function parsePlaylist(text) {
  if (typeof text !== "string") return null;
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (lines[0] !== "#EXTM3U") return null;
  let targetDuration = 0;
  let mediaSequence = 0;
  let ended = false;
  let pending = null; // the duration of the #EXTINF waiting for its URI
  const uris = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith("#EXT-X-TARGETDURATION:")) {
      targetDuration = number(line.slice(22), 0);
    } else if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
      mediaSequence = Math.max(0, Math.floor(number(line.slice(22), 0)));
    } else if (line === "#EXT-X-ENDLIST") {
      ended = true;
    } else if (line.startsWith("#EXTINF:")) {
      pending = number(line.slice(8).split(",")[0], 0);
    } else if (!line.startsWith("#")) {
      uris.push({ uri: line, duration: pending === null ? targetDuration : pending });
      pending = null;
    }
  }
  const segments = uris.map((s, i) => ({ seq: mediaSequence + i, ...s }));
  return { targetDuration, mediaSequence, segments, ended };
}

function number(text, fallback) {
  const n = Number.parseFloat(text);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** How far from the live edge a player starts: the third-from-last segment, as RFC 8216 §6.3.3
 *  asks, so two whole segments are in hand before the newest one. */
const LIVE_EDGE_SEGMENTS = 3;

/** The sequence number to start a live playlist at (its first segment when it has fewer than
 *  three, or when it is over and is played whole), or null when it has none. */
export function startSequence(playlist) {
  const segs = playlist.segments;
  if (!segs.length) return null;
  if (playlist.ended) return segs[0].seq;
  return segs[Math.max(0, segs.length - LIVE_EDGE_SEGMENTS)].seq;
}

/**
 * The segments to fetch next, in order, after the one numbered `last` was appended (`last` null:
 * nothing yet, so from `startSequence`). When the playlist has moved past `last + 1` (the player
 * fell behind the window), it goes on from the oldest segment still listed.
 */
export function segmentsAfter(playlist, last) {
  if (last === null) {
    const start = startSequence(playlist);
    return start === null ? [] : playlist.segments.filter((s) => s.seq >= start);
  }
  return playlist.segments.filter((s) => s.seq > last);
}

/** How long to wait before asking for the playlist again, in ms: one target duration (half of
 *  one when the last poll brought nothing new, RFC 8216 §6.3.4), never below half a second. */
export function pollDelayMs(playlist, gotNew) {
  const target = playlist && playlist.targetDuration > 0 ? playlist.targetDuration : 2;
  return Math.max(500, Math.round(target * 1000 * (gotNew ? 1 : 0.5)));
}

/**
 * Where playback should jump to catch up with the room, or null to play on: a player that has
 * fallen more than five target durations behind what it holds (a stall, a throttled tab) goes
 * back to three target durations from its newest audio, where it started. `targetDuration` in
 * seconds, as the playlist says (0: the server's usual 2 s).
 */
export function catchUpTime(currentTime, bufferedEnd, targetDuration) {
  const target = targetDuration > 0 ? targetDuration : 2;
  if (bufferedEnd - currentTime <= 5 * target) return null;
  return bufferedEnd - LIVE_EDGE_SEGMENTS * target;
}

// ---------------------------------------------------------------- the player

/** Whether this browser can run the player: MSE that takes MP3. */
export function supported() {
  return typeof MediaSource !== "undefined" && MediaSource.isTypeSupported("audio/mpeg");
}

// Audio further behind playback than this is removed from the buffer.
const KEEP_BEHIND_S = 30;
// How many failed fetches in a row before the player reports trouble (it keeps trying).
const FAILURES_REPORTED = 3;

/** Plays one live HLS playlist of MP3 segments on a media element, until `stop`. */
export class HlsPlayer {
  #url;
  #audio;
  #events;
  #source = null;
  #buffer = null;
  #objectUrl = null;
  #last = null;
  #targetDuration = 0;
  #timer = null;
  #stopped = false;
  #failures = 0;

  /**
   * @param {string} url the playlist (`/hls/{room}/index.m3u8`)
   * @param {HTMLMediaElement} audio the element to play on
   * @param {object} events `onTrouble(text)` while fetches fail (text "" once they work again),
   *   `onEnded()` at `#EXT-X-ENDLIST`
   */
  constructor(url, audio, events) {
    this.#url = new URL(url, location.href).href;
    this.#audio = audio;
    this.#events = events;
  }

  start() {
    const ms = new MediaSource();
    this.#source = ms;
    this.#objectUrl = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      if (this.#stopped || ms !== this.#source) return;
      this.#buffer = ms.addSourceBuffer("audio/mpeg");
      this.#buffer.mode = "sequence";
      this.#poll();
    }, { once: true });
    this.#audio.srcObject = null;
    this.#audio.src = this.#objectUrl;
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#objectUrl) URL.revokeObjectURL(this.#objectUrl);
    this.#objectUrl = null;
    this.#source = null;
    this.#buffer = null;
  }

  async #poll() {
    if (this.#stopped) return;
    let playlist = null;
    let gotNew = false;
    try {
      playlist = parsePlaylist(await this.#text(this.#url));
      if (!playlist) throw new Error("the server sent no playlist");
      this.#targetDuration = playlist.targetDuration;
      for (const seg of segmentsAfter(playlist, this.#last)) {
        const bytes = await this.#bytes(new URL(seg.uri, this.#url).href);
        if (this.#stopped) return;
        await this.#append(bytes);
        this.#last = seg.seq;
        gotNew = true;
      }
      this.#recovered();
    } catch (err) {
      // A failed fetch is tried again on the next poll, from the segment that failed.
      if (this.#stopped) return;
      this.#failures += 1;
      if (this.#failures >= FAILURES_REPORTED) this.#events.onTrouble(`The stream is not coming through (${err.message}); still trying…`);
    }
    if (this.#stopped) return;
    if (playlist && playlist.ended && segmentsAfter(playlist, this.#last).length === 0) {
      this.#finish();
      return;
    }
    this.#timer = setTimeout(() => this.#poll(), pollDelayMs(playlist, gotNew));
  }

  #recovered() {
    if (this.#failures >= FAILURES_REPORTED) this.#events.onTrouble("");
    this.#failures = 0;
  }

  async #text(url) {
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) throw new Error(`playlist: HTTP ${res.status}`);
    return res.text();
  }

  async #bytes(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`segment: HTTP ${res.status}`);
    return res.arrayBuffer();
  }

  async #append(bytes) {
    const buf = this.#buffer;
    if (!buf) throw new Error("the media source closed");
    this.#trim();
    await whenIdle(buf);
    buf.appendBuffer(bytes);
    await whenIdle(buf);
    const audio = this.#audio;
    if (audio.paused) audio.play().catch(() => {});
    else if (buf.buffered.length) {
      const to = catchUpTime(audio.currentTime, buf.buffered.end(buf.buffered.length - 1), this.#targetDuration);
      if (to !== null) audio.currentTime = to;
    }
  }

  /** Drops audio long behind playback, so an hour of listening does not fill the memory. */
  #trim() {
    const buf = this.#buffer;
    const behind = this.#audio.currentTime - KEEP_BEHIND_S;
    if (!buf || buf.updating || buf.buffered.length === 0 || behind <= buf.buffered.start(0)) return;
    buf.remove(buf.buffered.start(0), behind);
  }

  async #finish() {
    const ms = this.#source;
    if (!ms || !this.#buffer) return;
    await whenIdle(this.#buffer);
    if (ms.readyState === "open") ms.endOfStream();
    this.#events.onEnded();
  }
}

/** Resolves once `buffer` has finished its current append or removal. */
function whenIdle(buffer) {
  if (!buffer.updating) return Promise.resolve();
  return new Promise((resolve, reject) => {
    buffer.addEventListener("updateend", () => resolve(), { once: true });
    buffer.addEventListener("error", () => reject(new Error("the browser refused a segment")), { once: true });
  });
}
