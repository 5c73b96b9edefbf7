// Booth's web room client: listen (WHEP), raise a hand, speak (WHIP) and moderate, in any
// browser. ES modules with no build step, no framework and nothing from a CDN:
//   channel.js  the room channel (WebSocket) and its outbox
//   state.js    the room state and the pure `apply(state, msg, now)`
//   media.js    the Listener (WHEP) and Speaker (WHIP) sessions
//   stream.js   the room over HTTP (HLS, MP3) where WebRTC is missing or cannot connect; hls.js
//   view.js     drawing, and the person's clicks
//   keys.js     arrow keys and game pads move the focus
// This entry point wires them: every change of state goes through `update`, which then starts or
// stops what the new state needs and redraws. It holds no room rules of its own.

import { RoomChannel } from "./channel.js";
import { navigate } from "./keys.js";
import { Listener, Speaker } from "./media.js";
import { NO_WEBRTC, StreamListener, WEBRTC_FAILED, playbackText, streamUrls } from "./stream.js";
import * as view from "./view.js";
import {
  apply, awaitsEpisode, deleteClicked, deleteDisarmed, episodeAnswered, episodeAsked, episodeRequest,
  episodeUnreachable, initialState, inviteAnswered, isMe, isOver, leftRoom, listenBearer,
  removedFromRoom, withHand, withNotice, withoutLevels, withSelfMuted,
} from "./state.js";

const roomId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const roomPath = encodeURIComponent(roomId);
const tokenKey = "booth-token-" + roomId;
const linkKey = "booth-link-" + roomId;
// What the link's fragment carries (#token=, #invite=, #name=): read once, kept for this tab
// (a reload before the room welcomes us still has it), and taken out of the address bar at once,
// since streamers show their screen.
const hash = linkSecrets();
const nameKey = "booth-name";
// Levels arrive five times a second while anyone speaks; when they stop, nobody is speaking.
const LEVELS_HOLD_MS = 600;
// How often the host's page asks about the episode while it is rendered.
const EPISODE_POLL_MS = 2000;
// A WHEP session that has not connected within this long (or has been down this long, its own
// retries failing) gives way to the HTTP stream: a few seconds behind beats silence.
const WEBRTC_GIVE_UP_MS = 5000;
const WEBRTC_WATCH_MS = 500;
const hasWebRtc = typeof window.RTCPeerConnection === "function";

let state = initialState(Date.now());
let levelsTimer = null;
let episodeTimer = null;
let webRtcWatch = null;
let webRtcUpAt = 0; // when the WHEP session was last connected (or asked for)

function linkSecrets() {
  const fromLink = new URLSearchParams(location.hash.slice(1));
  if (location.hash) {
    history.replaceState(history.state, "", location.pathname + location.search);
    if ([...fromLink.keys()].length) sessionStorage.setItem(linkKey, fromLink.toString());
    return fromLink;
  }
  return new URLSearchParams(sessionStorage.getItem(linkKey) || "");
}

/** The token to join with: the room's, once welcomed; else one from the link or an earlier visit. */
function token() {
  return state.me ? state.me.token : (hash.get("token") || localStorage.getItem(tokenKey));
}

function hello() {
  const msg = { v: 1, type: "hello", name: localStorage.getItem(nameKey) || hash.get("name") || "" };
  const t = token() || hash.get("invite");
  if (t) msg.token = t;
  return msg;
}

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const channel = new RoomChannel(`${scheme}//${location.host}/api/rooms/${roomPath}/ws`, {
  hello,
  onMessage: received,
  onNotice: say,
  onRemoved: () => update(removedFromRoom(state)),
});
const listener = new Listener(`/whep/${roomPath}`, {
  bearer: () => listenBearer(state),
  onTrack: view.play,
  onNotice: say,
  onChange: show,
});
const speaker = new Speaker(`/whip/${roomPath}`, { onNotice: say });
const links = streamUrls(roomPath, location.origin);
const stream = new StreamListener(links, view.audioElement(), { onNotice: say, onChange: show });
const ticker = setInterval(() => view.tick(state, Date.now()), 1000);

function show() {
  view.render(state, {
    listening: listener.active || stream.active,
    connected: listener.connected || stream.playing,
    speaking: speaker.active,
    webrtc: hasWebRtc,
    http: stream.active ? playbackText(stream.mode, stream.why) : null,
  });
}

/** Plays the room: over WebRTC where the browser has it, over HTTP where it has not. */
function listen() {
  if (!hasWebRtc) {
    stream.start(NO_WEBRTC);
    return;
  }
  stream.stop();
  listener.start();
  webRtcUpAt = Date.now();
  clearInterval(webRtcWatch);
  webRtcWatch = setInterval(watchWebRtc, WEBRTC_WATCH_MS);
}

/** Falls back to the HTTP stream when WebRTC stays down for WEBRTC_GIVE_UP_MS. */
function watchWebRtc() {
  if (!listener.wanted) {
    clearInterval(webRtcWatch);
    webRtcWatch = null;
    return;
  }
  if (listener.connected) {
    webRtcUpAt = Date.now();
    return;
  }
  if (Date.now() - webRtcUpAt < WEBRTC_GIVE_UP_MS) return;
  clearInterval(webRtcWatch);
  webRtcWatch = null;
  listener.stop();
  stream.start(WEBRTC_FAILED);
  say("");
}

function stopListening() {
  clearInterval(webRtcWatch);
  webRtcWatch = null;
  listener.stop();
  stream.stop();
}

/** Makes `next` the state: the media follow it, then the page shows it. */
function update(next) {
  const before = state;
  state = next;
  settle(before);
}

function settle(before) {
  if (state.selfMuted !== before.selfMuted) speaker.setMuted(state.selfMuted);
  if (isOver(state) && !isOver(before)) {
    speaker.stop();
    stopListening();
    channel.close();
    if (state.ended) clearInterval(ticker);
  }
  followEpisode(isOver(before) ? EPISODE_POLL_MS : 0);
  show();
}

/** Asks the server about the room's episode (`what`: see `episodeRequest`); `asked` names a change. */
async function askEpisode(what, asked) {
  const req = episodeRequest(state, what);
  if (!req) return;
  if (asked) update(episodeAsked(state, asked));
  try {
    const res = await fetch(req.url, req);
    const body = res.status === 204 ? null : await res.json().catch(() => null);
    update(episodeAnswered(state, res.status, body));
  } catch (e) {
    update(episodeUnreachable(state, e && e.message));
  }
}

/** While the host waits for the episode to be rendered, the page asks again every few seconds. */
function followEpisode(after) {
  if (episodeTimer !== null || !awaitsEpisode(state)) return;
  episodeTimer = setTimeout(async () => {
    await askEpisode("get");
    episodeTimer = null;
    followEpisode(EPISODE_POLL_MS);
  }, after);
}

function say(text) {
  update(withNotice(state, text));
}

function received(msg) {
  const before = state;
  state = apply(state, msg, Date.now());
  follow(msg);
  settle(before);
}

/** What a message asks of the page beyond its state: storage, the address bar, media, timers. */
function follow(msg) {
  switch (msg && msg.type) {
    case "welcome":
      if (!state.me) return;
      localStorage.setItem(tokenKey, state.me.token);
      view.showName(state.me.name);
      // Welcomed: the room's token is stored; an invitation is spent.
      sessionStorage.removeItem(linkKey);
      return;
    case "role_changed":
      // Back in the audience: no more speaking, and the room is heard whole again.
      if (isMe(state, msg.id) && msg.role === "listener") {
        speaker.stop();
        listener.refresh();
      }
      return;
    case "levels":
      clearTimeout(levelsTimer);
      levelsTimer = setTimeout(() => update(withoutLevels(state)), LEVELS_HOLD_MS);
      return;
    case "error":
      // A refused token is forgotten, so the next visit joins as a new listener.
      if (msg.code === "unauthorized") localStorage.removeItem(tokenKey);
      return;
  }
}

async function speak() {
  if (!state.me) return;
  const outcome = await speaker.start(state.me.token);
  if (outcome === "no_microphone") return;
  if (outcome === "live") update(withSelfMuted(state, false));
  // Hear the room without yourself from now on: the HTTP stream has everyone, so a speaker
  // whose WHIP session went through tries WebRTC for listening again.
  if (stream.active && outcome === "live") listen();
  else listener.refresh();
  show();
}

view.wire({
  act: (action) => channel.send(action),
  listen,
  rename(name) {
    localStorage.setItem(nameKey, name);
    channel.send({ type: "set_name", name });
  },
  toggleHand() {
    const up = !state.handRaised;
    update(withHand(state, up));
    channel.send({ type: up ? "raise_hand" : "lower_hand" });
  },
  answerInvite(accept) {
    channel.send({ type: accept ? "accept_invite" : "decline_invite" });
    update(inviteAnswered(state));
  },
  speak,
  toggleMute() {
    const muted = !state.selfMuted;
    channel.send({ type: muted ? "mute_self" : "unmute" });
    update(withSelfMuted(state, muted));
  },
  leave() {
    speaker.stop();
    stopListening();
    channel.close();
    update(leftRoom(state));
  },
  renameEpisode: (title) => askEpisode({ title }, "rename"),
  toggleListing() {
    const published = state.episodeView && state.episodeView.status === "published";
    askEpisode(published ? "unlist" : "publish", published ? "unlist" : "publish");
  },
  deleteEpisode() {
    const click = deleteClicked(state);
    update(click.state);
    if (click.delete) askEpisode("delete", "delete");
  },
  keepEpisode: () => update(deleteDisarmed(state)),
});
window.addEventListener("beforeunload", () => {
  speaker.stop();
  stopListening();
});
view.showStreamLinks(links);
navigate(() => document.getElementById("listen"));

channel.open();
show();
document.getElementById("listen").focus();
