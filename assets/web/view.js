// The page: draws the room state (state.js) and turns clicks into calls on the page's handlers.
// A control for an action shows only when the room lets this page take that action (`may`); the
// view keeps no copy of the permissions table, only the rank rule the room enforces anyway.
// Everything a person typed (names, titles, emoji) goes on the page with textContent, never as
// HTML. No WebSocket and no RTCPeerConnection here.

import { canChangeEpisode, may, myRole, outranks, isOver, isMe, showsEpisode, speaksFromPage } from "./state.js";

const $ = (id) => document.getElementById(id);

// A speaking indicator lights above this voice level; the avatar's ring grows from LEVEL_FLOOR.
const SPEAKING_LEVEL = 0.45;
const LEVEL_FLOOR = 0.3;
const FLOAT_MS = 3200;

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/);
  return ((parts[0] || "?")[0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
}

function roleLabel(role) {
  return { host: "Host", co_host: "Co-host", speaker: "Speaker", listener: "Listener" }[role] || role;
}

function button(label, onClick, ariaLabel) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  if (ariaLabel) b.setAttribute("aria-label", ariaLabel);
  return b;
}

function div(className, text) {
  const d = document.createElement("div");
  d.className = className;
  d.textContent = text;
  return d;
}

/** `act(action)` after the person confirms `question`. */
function confirmed(question, act, action) {
  return () => { if (confirm(question)) act(action); };
}

// ---------------------------------------------------------------- drawing

// The stage and moderation lists are rebuilt only when what they list changes: voice levels
// arrive five times a second, and rebuilding on each would pull buttons out from under a click.
let stageKey = "";
let moderationKey = "";
let reactionsShown = 0;
let act = () => {};

function paintLevels(state) {
  for (const li of $("stage").children) {
    const m = state.stage.find((s) => String(s.id) === li.dataset.id);
    if (!m) continue;
    const level = state.levels.get(m.id) || 0;
    const speaking = level > SPEAKING_LEVEL && !m.muted;
    li.classList.toggle("speaking", speaking);
    const ring = m.muted ? 0 : Math.max(0, (level - LEVEL_FLOOR) / (1 - LEVEL_FLOOR)).toFixed(2);
    li.querySelector(".avatar").style.setProperty("--level", ring);
    li.querySelector(".role").textContent = roleLabel(m.role) + (speaking ? " · speaking" : "");
  }
}

/** A moderator's buttons for a stage member of lower rank, or null. */
function memberTools(state, m) {
  if (!state.me || isMe(state, m.id) || !outranks(state, m)) return null;
  const tools = [];
  if (may(state, "mute") && !m.muted) tools.push(button("Mute", () => act({ type: "mute", target: m.id }), `Mute ${m.name}`));
  if (may(state, "move_to_audience")) {
    tools.push(button("To audience", () => act({ type: "move_to_audience", target: m.id }), `Move ${m.name} to the audience`));
  }
  if (may(state, "make_co_host") && m.role === "speaker") {
    tools.push(button("Make co-host", () => act({ type: "make_co_host", target: m.id }), `Make ${m.name} co-host`));
  }
  if (may(state, "unmake_co_host") && m.role === "co_host") {
    tools.push(button("Unmake co-host", () => act({ type: "unmake_co_host", target: m.id }), `Unmake ${m.name} co-host`));
  }
  if (may(state, "remove")) {
    tools.push(button("Remove", confirmed(`Remove ${m.name} from the room?`, act, { type: "remove", target: m.id }), `Remove ${m.name}`));
  }
  if (!tools.length) return null;
  const box = div("tools", "");
  box.append(...tools);
  return box;
}

function stageMember(state, m) {
  const li = document.createElement("li");
  li.className = "member";
  li.dataset.id = m.id;
  const avatar = div("avatar", initials(m.name));
  avatar.setAttribute("aria-hidden", "true");
  li.append(avatar, div("name", m.name), div("role", roleLabel(m.role)));
  if (m.muted) li.append(div("muted-icon", "🔇 muted"));
  const tools = memberTools(state, m);
  if (tools) li.append(tools);
  return li;
}

function renderStage(state) {
  const key = JSON.stringify([state.stage, state.actions, myRole(state), state.me && state.me.id]);
  if (key !== stageKey) {
    stageKey = key;
    $("stage").replaceChildren(...state.stage.map((m) => stageMember(state, m)));
  }
  paintLevels(state);
}

function who(text) {
  const span = document.createElement("span");
  span.className = "who";
  span.textContent = text;
  return span;
}

function handItem(state, h) {
  const li = document.createElement("li");
  li.append(who("✋ " + h.name));
  if (may(state, "approve")) li.append(button("Approve", () => act({ type: "approve", target: h.id }), `Approve ${h.name}`));
  if (may(state, "deny")) li.append(button("Deny", () => act({ type: "deny", target: h.id }), `Deny ${h.name}`));
  return li;
}

function audienceItem(state, id, name) {
  const li = document.createElement("li");
  li.append(who(name));
  if (may(state, "invite")) li.append(button("Invite to speak", () => act({ type: "invite", target: id }), `Invite ${name} to speak`));
  if (may(state, "remove")) {
    li.append(button("Remove", confirmed(`Remove ${name} from the room?`, act, { type: "remove", target: id }), `Remove ${name}`));
  }
  if (may(state, "make_co_host")) li.append(button("Make co-host", () => act({ type: "make_co_host", target: id }), `Make ${name} co-host`));
  return li;
}

// The moderation panel is for whoever the room lets take one of these.
const MODERATION = ["approve", "deny", "invite", "remove", "make_co_host", "end"];

function renderModeration(state) {
  const moderates = MODERATION.some((a) => may(state, a));
  $("mod").hidden = !moderates || isOver(state) || state.left;
  if (!moderates) return;
  const key = JSON.stringify([state.hands, [...state.audience], state.actions, state.me && state.me.id]);
  if (key === moderationKey) return;
  moderationKey = key;
  $("hands").replaceChildren(...state.hands.map((h) => handItem(state, h)));
  $("no-hands").hidden = state.hands.length > 0;
  const others = [...state.audience].filter(([id]) => !isMe(state, id));
  $("audience").replaceChildren(...others.map(([id, name]) => audienceItem(state, id, name)));
  $("end").hidden = !may(state, "end");
}

function renderHeader(state) {
  if (state.room) {
    $("title").textContent = state.room.title;
    $("game").textContent = state.room.game;
    document.title = state.room.title + " · Booth";
  }
  const over = isOver(state);
  $("live").hidden = over;
  $("rec").hidden = !state.recording || over;
  $("count").textContent = over ? "" : `${state.listening} listening · ${state.stage.length} on stage`;
}

function renderPlayer(media) {
  const listen = $("listen");
  // The focus follows the control that takes the Listen button's place, not into nowhere.
  const hadFocus = document.activeElement === listen;
  listen.hidden = media.listening;
  $("playing").hidden = !media.listening;
  if (hadFocus && media.listening) $("volume").focus();
  if (media.http) $("playing-text").textContent = media.http;
  else $("playing-text").textContent = media.connected ? "Listening live" : "Connecting…";
}

/** Why this page can't speak: speaking goes over WebRTC, which the browser lacks. */
const NO_WEBRTC_TO_SPEAK = "this browser has no WebRTC, which speaking needs. "
  + "Open the room in Chrome, Firefox, Edge or Safari to speak; you can keep listening here.";

function renderControls(state, media) {
  const over = isOver(state);
  const hand = $("hand");
  hand.hidden = !may(state, state.handRaised ? "lower_hand" : "raise_hand") || over;
  hand.setAttribute("aria-pressed", String(state.handRaised));
  hand.textContent = state.handRaised ? "✋ Lower hand" : "✋ Raise hand";
  $("invite").hidden = !(state.invited && may(state, "accept_invite"));
  $("invite-text").textContent = media.webrtc ? "You're invited to speak." : "You're invited to speak, but " + NO_WEBRTC_TO_SPEAK;
  $("accept").hidden = !media.webrtc;
  $("mic").hidden = !speaksFromPage(state) || media.speaking || over || !media.webrtc;
  $("no-webrtc").hidden = !speaksFromPage(state) || over || media.webrtc;
  $("no-webrtc").textContent = "You're on stage, but " + NO_WEBRTC_TO_SPEAK;
  const mute = $("mute");
  mute.hidden = !media.speaking || !may(state, state.selfMuted ? "unmute" : "mute_self");
  mute.textContent = state.selfMuted ? "🎙 Unmute" : "Mute";
  mute.setAttribute("aria-pressed", String(state.selfMuted));
  $("leave-stage").hidden = !may(state, "leave_stage");
  document.querySelector(".reactions").hidden = !may(state, "react");
}

/** What the ended panel says, or null while the person is in the room. */
function ending(state) {
  if (state.removed) return { title: "You were removed from this room", text: "A moderator removed you. You can't rejoin this room." };
  if (state.ended === "host_gone") return { title: "This room has ended", text: "The host left and the room closed." };
  if (state.ended === "unused") return { title: "This room has ended", text: "Its host never came, so the room closed." };
  if (state.ended) return { title: "This room has ended", text: "The host ended the room. Thanks for listening." };
  if (state.left) return { title: "You left the room", text: "Open the link again to come back." };
  return null;
}

function renderEnding(state) {
  const end = ending(state);
  $("ended").hidden = !end;
  $("player").hidden = !!end;
  $("me").hidden = !!end;
  // Who was on stage stays in sight for a person who leaves or is removed; an ended room has none.
  document.querySelector(".stage-wrap").hidden = state.ended !== null;
  if (!end) return;
  $("ended-title").textContent = end.title;
  $("ended-text").textContent = end.text;
}

/** What the episode panel says while it waits, or once it is done. */
function episodeStatus(state) {
  const v = state.episodeView;
  const n = state.episode ? state.episode.id : "";
  if (state.episodeDeleted) return `Episode ${n} is deleted, with its files.`;
  if (!v || v.status === "recording") return `Episode ${n}: finishing the recording…`;
  if (v.status === "rendering") return `Episode ${n}: rendering (normalising, MP3, chapters)…`;
  if (v.status === "failed") return `Episode ${n} could not be rendered: ${v.error || "no reason given"}`;
  if (state.episodeAsked) return { rename: "Renaming…", publish: "Publishing…", unlist: "Unlisting…", delete: "Deleting…" }[state.episodeAsked] || "";
  return v.status === "published" ? "Episode ready: in the feed." : "Episode ready: unlisted, only its link finds it.";
}

function renderEpisode(state) {
  const shown = showsEpisode(state);
  $("episode").hidden = !shown;
  $("rec-failed").hidden = !state.recordingFailed || isOver(state);
  $("rec-failed").textContent = state.recordingFailed;
  if (!shown) return;
  const v = state.episodeView;
  const ready = !!v && !state.episodeDeleted && (v.status === "published" || v.status === "unlisted");
  $("episode-title").textContent = ready ? "Episode ready" : "Episode";
  $("episode-status").textContent = episodeStatus(state);
  $("episode-problem").textContent = state.episodeProblem;
  $("episode-ready").hidden = !ready;
  if (!ready) return;
  for (const [id, url] of [["episode-page", v.page], ["episode-feed", v.feed]]) {
    $(id).href = url;
    $(id).textContent = url;
  }
  if (document.activeElement !== $("episode-name") && !state.episodeAsked) $("episode-name").value = v.title;
  const free = canChangeEpisode(state);
  for (const id of ["episode-rename", "episode-listing", "episode-delete"]) $(id).disabled = !free;
  $("episode-listing").textContent = v.status === "published" ? "Unlist" : "Publish";
  $("episode-delete").textContent = state.deleteArmed ? "Delete for good" : "Delete";
  $("episode-keep").hidden = !state.deleteArmed;
}

function floatEmoji(emoji) {
  const f = document.createElement("span");
  f.className = "floater";
  f.textContent = emoji;
  f.style.left = (10 + Math.random() * 80) + "%";
  $("floaters").append(f);
  setTimeout(() => f.remove(), FLOAT_MS);
}

/** Draws `state`; `media` says what the page's sessions are doing: `{listening, connected,
 *  speaking, webrtc, http}` (`webrtc`: the browser has it; `http`: what the page says while it
 *  plays the HTTP stream instead, else null). */
export function render(state, media) {
  renderHeader(state);
  renderPlayer(media);
  renderControls(state, media);
  renderStage(state);
  renderModeration(state);
  renderEnding(state);
  renderEpisode(state);
  $("notice").textContent = state.notice;
  if (state.reactions !== reactionsShown) {
    reactionsShown = state.reactions;
    floatEmoji(state.lastReaction);
  }
}

/** Shows how long the room has been live. */
export function tick(state, now) {
  const s = Math.max(0, Math.floor((now - state.startedAt) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  $("elapsed").textContent = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
}

/** The element the room plays on. */
export function audioElement() {
  return $("audio");
}

/** Fills "Listen in your player" with the room's stream URLs (`{m3u, mp3, ogg, hls}`). */
export function showStreamLinks(urls) {
  for (const [kind, url] of Object.entries(urls)) {
    const a = $("link-" + kind);
    if (!a) continue;
    a.href = url;
    a.textContent = url;
  }
}

/** Plays the room's audio (a WebRTC stream). */
export function play(stream) {
  const audio = $("audio");
  audio.removeAttribute("src");
  audio.srcObject = stream;
  audio.volume = Number($("volume").value);
  audio.play().catch(() => {});
}

/** Puts the room's name for the person in the name field, unless they are typing in it. */
export function showName(name) {
  if (document.activeElement !== $("name")) $("name").value = name;
}

// ---------------------------------------------------------------- the person's input

/**
 * Connects the page's controls to `page`: `act(action)` sends an action to the room;
 * `listen()`, `rename(name)`, `toggleHand()`, `answerInvite(accept)`, `speak()`,
 * `toggleMute()`, `leave()` do what their buttons say; for the host's episode after the room,
 * `renameEpisode(title)`, `toggleListing()`, `deleteEpisode()` (the first click arms it) and
 * `keepEpisode()`.
 */
export function wire(page) {
  act = page.act;
  $("listen").addEventListener("click", () => page.listen());
  $("name").addEventListener("change", (e) => {
    const name = e.target.value.trim();
    if (name) page.rename(name);
  });
  $("volume").addEventListener("input", (e) => { $("audio").volume = Number(e.target.value); });
  $("hand").addEventListener("click", () => page.toggleHand());
  $("accept").addEventListener("click", () => page.answerInvite(true));
  $("decline").addEventListener("click", () => page.answerInvite(false));
  $("mic").addEventListener("click", () => page.speak());
  $("mute").addEventListener("click", () => page.toggleMute());
  $("leave-stage").addEventListener("click", () => act({ type: "leave_stage" }));
  $("leave").addEventListener("click", () => page.leave());
  $("end").addEventListener("click", confirmed("End the room for everyone?", act, { type: "end" }));
  $("episode-rename").addEventListener("click", () => page.renameEpisode($("episode-name").value));
  $("episode-name").addEventListener("keydown", (e) => { if (e.key === "Enter") page.renameEpisode(e.target.value); });
  $("episode-listing").addEventListener("click", () => page.toggleListing());
  $("episode-delete").addEventListener("click", () => page.deleteEpisode());
  $("episode-keep").addEventListener("click", () => page.keepEpisode());
  for (const b of document.querySelectorAll(".react")) {
    b.addEventListener("click", () => act({ type: "react", emoji: b.dataset.emoji }));
  }
}
