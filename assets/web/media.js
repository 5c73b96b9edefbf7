// The page's audio sessions with the room: a Listener (WHEP) and a Speaker (WHIP, RFC 9725).
// Each owns its RTCPeerConnection, its session URL on the server (ended with a DELETE when it is
// done) and its retries. No DOM and no room state: what to play goes to `onTrack`, words for the
// person to `onNotice`, anything the page shows to `onChange`.

function stereoOffer(sdp) {
  // Ask for stereo: the game keeps its stereo image in the program.
  return sdp.replace(/a=fmtp:(\d+) (.*useinbandfec=1.*)/g, (line, pt, params) =>
    /stereo=1/.test(params) ? line : `a=fmtp:${pt} ${params};stereo=1;sprop-stereo=1`);
}

/** Waits for ICE gathering (the server is ICE-lite and takes no trickled candidates), at most 1 s. */
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 1000);
  });
}

/** Offers `pc` to a WHIP or WHEP endpoint; resolves the session's URL (its `Location`). */
async function negotiate(pc, url, bearer) {
  const offer = await pc.createOffer();
  offer.sdp = stereoOffer(offer.sdp);
  await pc.setLocalDescription(offer);
  await gathered(pc);
  const headers = { "Content-Type": "application/sdp" };
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const res = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (res.status !== 201) {
    let message = res.statusText;
    try { message = (await res.json()).message; } catch {}
    throw new Error(message);
  }
  const session = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return session;
}

function hangUp(session, bearer) {
  const headers = bearer ? { Authorization: "Bearer " + bearer } : {};
  fetch(session, { method: "DELETE", headers }).catch(() => {});
}

// A session can die without the browser saying so for many seconds (the server ended it, the
// network went away): when no audio packet has arrived for a second, start a new one. A new
// session gets longer to bring its first packet (ICE and DTLS take a moment on a busy link):
// counting that as a stall would end every session before it could connect.
const STALL_MS = 1000;
const FIRST_PACKET_MS = 5000;
const STALL_CHECK_MS = 500;
const RETRY_MS = 1000;

async function packetsReceived(pc) {
  let packets = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") packets = r.packetsReceived;
  });
  return packets;
}

/** Plays the room: one WHEP session at a time, replaced when it fails or stalls. */
export class Listener {
  #url;
  #events;
  #pc = null;
  #session = null;
  #wanted = false;
  #retry = null;
  #stallWatch = null;
  #watchedPc = null;
  #lastPackets = 0;
  #stalledSince = 0;

  /**
   * @param {string} url the room's WHEP endpoint
   * @param {object} events `bearer()`: the token to listen with, or null (on stage it brings the
   *   mix-minus); `onTrack(stream)`; `onNotice(text)`; `onChange()`
   */
  constructor(url, events) {
    this.#url = url;
    this.#events = events;
  }

  /** The person wants to hear the room (until `stop`). */
  get wanted() { return this.#wanted; }
  /** A session is on or on its way. */
  get active() { return this.#pc !== null && this.#wanted; }
  get connected() { return this.#pc !== null && this.#pc.connectionState === "connected"; }
  /** The current session's URL on the server. */
  get session() { return this.#session; }

  /** Starts a new session, ending the one before. */
  async start() {
    this.#wanted = true;
    clearTimeout(this.#retry);
    this.#end();
    if (!this.#stallWatch) this.#stallWatch = setInterval(() => this.#checkStall(), STALL_CHECK_MS);
    const pc = new RTCPeerConnection();
    this.#pc = pc;
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (e) => {
      if (pc === this.#pc) this.#events.onTrack(e.streams[0] || new MediaStream([e.track]));
    };
    pc.onconnectionstatechange = () => this.#stateChanged(pc);
    try {
      const session = await negotiate(pc, this.#url, this.#events.bearer());
      // Replaced or stopped while it was being set up: this session has no one to play to.
      if (pc !== this.#pc) hangUp(session);
      else this.#session = session;
    } catch (err) {
      if (pc !== this.#pc) return; // replaced or stopped: its failure is no news
      this.#events.onNotice("Can't listen right now: " + err.message);
      this.#retryLater();
    }
    this.#events.onChange();
  }

  /** A new session if one is wanted: what the person should hear has changed (they went on
   *  stage, or back to the audience). */
  refresh() {
    if (this.#wanted) this.start();
  }

  /** Stops listening, and retrying, until `start`. */
  stop() {
    this.#wanted = false;
    clearTimeout(this.#retry);
    clearInterval(this.#stallWatch);
    this.#stallWatch = null;
    this.#end();
  }

  #end() {
    if (this.#pc) {
      const pc = this.#pc;
      this.#pc = null;
      pc.close();
    }
    if (this.#session) {
      hangUp(this.#session);
      this.#session = null;
    }
  }

  #stateChanged(pc) {
    if (pc !== this.#pc) return;
    if (pc.connectionState === "connected") {
      this.#events.onNotice("");
      this.#events.onChange();
    }
    if (["failed", "disconnected", "closed"].includes(pc.connectionState) && this.#wanted) {
      this.#events.onNotice("Reconnecting…");
      this.#retryLater();
    }
  }

  #retryLater() {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => { if (this.#wanted) this.start(); }, RETRY_MS);
  }

  async #checkStall() {
    const pc = this.#pc;
    if (!pc || !this.#wanted) return;
    if (pc !== this.#watchedPc) {
      this.#watchedPc = pc;
      this.#lastPackets = 0;
      this.#stalledSince = Date.now();
      return;
    }
    let packets;
    try { packets = await packetsReceived(pc); } catch { return; }
    if (pc !== this.#pc) return;
    if (packets !== this.#lastPackets) {
      this.#lastPackets = packets;
      this.#stalledSince = Date.now();
      return;
    }
    if (Date.now() - this.#stalledSince > (packets > 0 ? STALL_MS : FIRST_PACKET_MS)) {
      this.#events.onNotice("Reconnecting…");
      this.start();
    }
  }
}

/** Speaks from the page's microphone on stage: one WHIP session, made with the person's token. */
export class Speaker {
  #url;
  #events;
  #pc = null;
  #session = null;
  #token = null;
  #mic = null;

  /**
   * @param {string} url the room's WHIP endpoint
   * @param {object} events `onNotice(text)`
   */
  constructor(url, events) {
    this.#url = url;
    this.#events = events;
  }

  /** A session is on or on its way. */
  get active() { return this.#pc !== null; }

  /** Opens the microphone and publishes it with `token`. Resolves "live", "no_microphone" (the
   *  browser gave none: nothing was tried) or "refused" (the room or the network said no). */
  async start(token) {
    try {
      this.#mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      this.#events.onNotice("No microphone: " + err.message);
      return "no_microphone";
    }
    const pc = new RTCPeerConnection();
    this.#pc = pc;
    this.#token = token;
    for (const track of this.#mic.getAudioTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    try {
      this.#session = await negotiate(pc, this.#url, token);
      this.#events.onNotice("You're live on stage.");
      return "live";
    } catch (err) {
      this.#events.onNotice("Can't go on stage: " + err.message);
      this.stop();
      return "refused";
    }
  }

  /** Ends the session and releases the microphone. */
  stop() {
    if (this.#pc) {
      this.#pc.close();
      this.#pc = null;
    }
    if (this.#session) {
      hangUp(this.#session, this.#token);
      this.#session = null;
    }
    if (this.#mic) {
      this.#mic.getTracks().forEach((t) => t.stop());
      this.#mic = null;
    }
  }

  /** Silences the microphone (or not) without ending the session. */
  setMuted(muted) {
    if (this.#mic) this.#mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  }
}
