// The room over plain HTTP, for a page that cannot listen over WebRTC (no RTCPeerConnection, or a
// WHEP session that never connects): native HLS where the browser has it (Safari, iOS, many
// TVs), else HLS through hls.js over Media Source Extensions, else the endless MP3 stream.
// It plays on the media element it is given and says what it does through `onChange`; the words
// for the person come from `playbackText`. It must never be used while a WHEP session plays:
// the page would play the room twice, seconds apart.

import { HlsPlayer, supported as mseSupported } from "./hls.js";

/** The room's HTTP streams, by the room's id as it appears in its URLs. */
export function streamUrls(roomPath, origin) {
  return {
    m3u: `${origin}/live/${roomPath}.m3u`,
    mp3: `${origin}/live/${roomPath}.mp3`,
    ogg: `${origin}/live/${roomPath}.ogg`,
    hls: `${origin}/hls/${roomPath}/index.m3u8`,
  };
}

/**
 * The ways this browser can play the room over HTTP, best first, from what it can do
 * (`{nativeHls, mseMp3}`, both booleans): some of "native_hls", "mse_hls", then always "mp3",
 * which every browser with an audio element plays. Pure.
 */
export function httpPlayback(can) {
  const modes = [];
  if (can.nativeHls) modes.push("native_hls");
  if (can.mseMp3) modes.push("mse_hls");
  modes.push("mp3");
  return modes;
}

/** Why the page plays over HTTP: "no_webrtc" (the browser has none) or "webrtc_failed". */
export const NO_WEBRTC = "no_webrtc";
export const WEBRTC_FAILED = "webrtc_failed";

/** What the page says while it plays over HTTP (`mode` from `httpPlayback`, `why` one of the
 *  reasons above). Pure. */
export function playbackText(mode, why) {
  const how = mode === "mp3" ? "the MP3 stream" : "HLS";
  if (why === NO_WEBRTC) return `Playing over ${how}: this browser has no WebRTC`;
  return "WebRTC could not connect: playing the HTTP stream, a few seconds behind";
}

/** What the browser running this page can play. */
function capabilities(audio) {
  return {
    nativeHls: audio.canPlayType("application/vnd.apple.mpegurl") !== "",
    mseMp3: mseSupported(),
  };
}

/** Plays the room's HTTP stream on one media element, until `stop`. When a way of playing fails
 *  (the element reports an error), it goes on with the next one `httpPlayback` offers. */
export class StreamListener {
  #urls;
  #audio;
  #events;
  #hls = null;
  #modes = [];
  #why = null;
  #playing = false;

  /**
   * @param {object} urls `streamUrls(…)`
   * @param {HTMLMediaElement} audio the page's audio element
   * @param {object} events `onNotice(text)`, `onChange()`
   */
  constructor(urls, audio, events) {
    this.#urls = urls;
    this.#audio = audio;
    this.#events = events;
    audio.addEventListener("playing", () => {
      if (this.mode && !this.#playing) {
        this.#playing = true;
        this.#events.onChange();
      }
    });
    audio.addEventListener("error", () => {
      if (!this.mode || this.#modes.length < 2) return;
      this.#modes = this.#modes.slice(1);
      this.#play();
    });
  }

  /** "native_hls" | "mse_hls" | "mp3" while it plays, else null. */
  get mode() { return this.#modes.length ? this.#modes[0] : null; }
  /** Why it plays (NO_WEBRTC or WEBRTC_FAILED), while it does. */
  get why() { return this.#why; }
  get active() { return this.mode !== null; }
  /** Audio has started coming out. */
  get playing() { return this.#playing; }

  /** Starts playing (`why`: NO_WEBRTC or WEBRTC_FAILED); already playing, it only changes why. */
  start(why) {
    this.#why = why;
    if (this.mode) return this.#events.onChange();
    this.#modes = httpPlayback(capabilities(this.#audio));
    this.#play();
  }

  #play() {
    const audio = this.#audio;
    if (this.#hls) this.#hls.stop();
    this.#hls = null;
    this.#playing = false;
    audio.srcObject = null;
    if (this.mode === "mse_hls") {
      this.#hls = new HlsPlayer(this.#urls.hls, audio, {
        onTrouble: (text) => this.#events.onNotice(text),
        onEnded: () => this.#events.onNotice("The stream has ended."),
      });
      this.#hls.start();
    } else {
      audio.src = this.mode === "native_hls" ? this.#urls.hls : this.#urls.mp3;
      audio.play().catch(() => {}); // an error shows as the element's `error` event
    }
    this.#events.onChange();
  }

  stop() {
    if (!this.mode) return;
    if (this.#hls) this.#hls.stop();
    this.#hls = null;
    this.#modes = [];
    this.#why = null;
    this.#playing = false;
    this.#audio.pause();
    this.#audio.removeAttribute("src");
    this.#audio.load();
    this.#events.onChange();
  }
}
