// Booth's web room client: listen (WHEP), raise a hand, speak (WHIP) and moderate, in any
// browser. No framework and nothing from a CDN. Every text a person typed is put on the page
// with textContent, never as HTML.
"use strict";

const roomId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const hash = new URLSearchParams(location.hash.slice(1));
const storeKey = "booth-token-" + roomId;
const $ = (id) => document.getElementById(id);

const state = {
  me: null,              // {id, role, name, token}
  stage: [],
  hands: [],
  audience: new Map(),   // id -> name
  listening: 0,
  recording: false,
  ended: false,
  startedAt: Date.now(),
  levels: new Map(),
  invited: false,
  live: false,
};

let ws = null;
let wsRetry = 500;
let listenPc = null;
let listenWanted = false;
let listenRetry = null;
let listenSession = null;
let speakPc = null;
let speakSession = null;
let micStream = null;
let selfMuted = false;

function notice(text) { $("notice").textContent = text || ""; }

function token() { return state.me ? state.me.token : (hash.get("token") || localStorage.getItem(storeKey)); }

function onStage(id) { return state.stage.some((m) => m.id === id); }
function myRole() {
  if (!state.me) return "listener";
  const m = state.stage.find((s) => s.id === state.me.id);
  return m ? m.role : "listener";
}
function isModerator() { const r = myRole(); return r === "host" || r === "co_host"; }

// ---------------------------------------------------------------- the room channel

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/api/rooms/${encodeURIComponent(roomId)}/ws`);
  ws.onopen = () => {
    wsRetry = 500;
    const hello = { v: 1, type: "hello", name: localStorage.getItem("booth-name") || hash.get("name") || "" };
    const invite = hash.get("invite");
    const t = token();
    if (t) hello.token = t; else if (invite) hello.token = invite;
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    handle(msg);
  };
  ws.onclose = (e) => {
    welcomed = false;
    if (e.reason && /removed/.test(e.reason)) { removed(); return; }
    if (state.ended) return;
    setTimeout(connect, wsRetry);
    wsRetry = Math.min(wsRetry * 2, 10000);
  };
}

// What the page does while its room channel is down (a network blip, a server restart) is not
// lost: it waits here and goes out once the room has welcomed the page again. An action older
// than OUTBOX_MS by then is dropped, with a notice, rather than acted on long after the click.
const OUTBOX_MS = 15000;
let welcomed = false;
const outbox = [];

function send(action) {
  const msg = JSON.stringify({ v: 1, ...action });
  if (ws && ws.readyState === WebSocket.OPEN && welcomed) { ws.send(msg); return; }
  outbox.push({ at: Date.now(), msg });
  notice("Reconnecting to the room… what you just did goes out when it's back.");
}

function flushOutbox() {
  const now = Date.now();
  const queued = outbox.splice(0);
  const fresh = queued.filter((q) => now - q.at <= OUTBOX_MS);
  for (const q of fresh) ws.send(q.msg);
  if (fresh.length < queued.length) notice("The room couldn't be reached for a while: some of what you did didn't reach it. Please try again.");
  else if (queued.length) notice("");
}

function handle(msg) {
  switch (msg.type) {
    case "welcome": {
      state.me = msg.you;
      localStorage.setItem(storeKey, msg.you.token);
      if (document.activeElement !== $("name")) $("name").value = msg.you.name;
      if (hash.has("invite")) { history.replaceState(null, "", location.pathname); }
      const r = msg.room || {};
      $("title").textContent = r.title || "Booth room";
      $("game").textContent = r.game || "";
      document.title = (r.title || "Booth room") + " · Booth";
      state.startedAt = Date.now() - (r.elapsed_ms || 0);
      state.stage = r.stage || [];
      state.hands = r.hand_queue || [];
      state.recording = !!r.recording;
      state.live = !!r.live;
      state.listening = r.listening || 0;
      state.audience = new Map((r.audience || []).map((a) => [a.id, a.name]));
      if (r.ended) ended("host_ended");
      welcomed = true;
      flushOutbox();
      break;
    }
    case "joined":
      if (msg.role === "listener") state.audience.set(msg.id, msg.name);
      break;
    case "left": state.audience.delete(msg.id); state.hands = state.hands.filter((h) => h.id !== msg.id); break;
    case "role_changed":
      if (msg.role === "listener") {
        const m = state.stage.find((s) => s.id === msg.id);
        if (m) state.audience.set(msg.id, m.name);
      } else state.audience.delete(msg.id);
      if (state.me && msg.id === state.me.id) { state.me.role = msg.role; roleChanged(msg.role); }
      break;
    case "stage_changed": state.stage = msg.stage; break;
    case "hand_queue": state.hands = msg.queue; break;
    case "invited": state.invited = true; break;
    case "hand_denied": notice("The hosts didn't bring you on stage this time."); setHand(false); break;
    case "invite_declined": break;
    case "muted":
      if (state.me && msg.id === state.me.id) { setSelfMuted(true); notice("A moderator muted you. Unmute when you're ready."); }
      break;
    case "unmuted": break;
    case "removed":
      if (state.me && msg.id === state.me.id) removed();
      state.audience.delete(msg.id);
      break;
    case "reaction": floatEmoji(msg.emoji); break;
    case "renamed":
      if (state.audience.has(msg.id)) state.audience.set(msg.id, msg.name);
      state.hands = state.hands.map((h) => (h.id === msg.id ? { ...h, name: msg.name } : h));
      if (state.me && msg.id === state.me.id) state.me.name = msg.name;
      break;
    case "recording": state.recording = msg.on; break;
    case "listener_count": break;
    case "audience": state.listening = msg.listening; break;
    case "levels": for (const [id, level] of msg.levels) state.levels.set(id, level); decayLevels(); break;
    case "host_away": notice("The host dropped out; the room waits for them."); break;
    case "host_back": notice(""); break;
    case "host_changed": notice("There's a new host."); break;
    case "ended": ended(msg.reason); break;
    case "error":
      if (msg.code === "removed") { removed(); return; }
      if (msg.code === "unauthorized") { localStorage.removeItem(storeKey); }
      notice(msg.message);
      break;
  }
  render();
}

let levelTimer = null;
function decayLevels() {
  clearTimeout(levelTimer);
  levelTimer = setTimeout(() => { state.levels.clear(); render(); }, 600);
}

// ---------------------------------------------------------------- listening (WHEP)

function stereoOffer(sdp) {
  // Ask for stereo: the game keeps its stereo image in the program.
  return sdp.replace(/a=fmtp:(\d+) (.*useinbandfec=1.*)/g, (line, pt, params) =>
    /stereo=1/.test(params) ? line : `a=fmtp:${pt} ${params};stereo=1;sprop-stereo=1`);
}

async function negotiate(pc, url, bearer) {
  const offer = await pc.createOffer();
  offer.sdp = stereoOffer(offer.sdp);
  await pc.setLocalDescription(offer);
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 1000);
  });
  const headers = { "Content-Type": "application/sdp" };
  if (bearer) headers.Authorization = "Bearer " + bearer;
  const res = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (res.status !== 201) {
    let message = res.statusText;
    try { message = (await res.json()).message; } catch {}
    throw new Error(message);
  }
  const location = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return location;
}

async function startListening() {
  listenWanted = true;
  clearTimeout(listenRetry);
  stopListening(false);
  const pc = new RTCPeerConnection();
  listenPc = pc;
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (e) => {
    const audio = $("audio");
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.volume = Number($("volume").value);
    audio.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (pc !== listenPc) return;
    if (pc.connectionState === "connected") { notice(""); render(); }
    if (["failed", "disconnected", "closed"].includes(pc.connectionState) && listenWanted && !state.ended) {
      notice("Reconnecting…");
      retryListening();
    }
  };
  try {
    // On stage, the token brings the mix-minus: everyone but yourself.
    const bearer = state.me && onStage(state.me.id) ? state.me.token : null;
    listenSession = await negotiate(pc, `/whep/${encodeURIComponent(roomId)}`, bearer);
  } catch (err) {
    notice("Can't listen right now: " + err.message);
    retryListening();
  }
  render();
}

// A session can die without the browser saying so for many seconds (the server ended it, the
// network went away): when no audio packet has arrived for a second, start a new one. A new
// session gets longer to bring its first packet (ICE and DTLS take a moment on a busy link):
// counting that as a stall would end every session before it could connect.
const STALL_MS = 1000;
const FIRST_PACKET_MS = 5000;
let watchedPc = null;
let lastPackets = 0;
let stalledSince = 0;
setInterval(async () => {
  const pc = listenPc;
  if (!pc || !listenWanted || state.ended) return;
  if (pc !== watchedPc) { watchedPc = pc; lastPackets = 0; stalledSince = Date.now(); return; }
  let packets = 0;
  try {
    (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "audio") packets = r.packetsReceived; });
  } catch { return; }
  if (pc !== listenPc) return;
  if (packets !== lastPackets) { lastPackets = packets; stalledSince = Date.now(); return; }
  if (Date.now() - stalledSince > (packets > 0 ? STALL_MS : FIRST_PACKET_MS)) {
    notice("Reconnecting…");
    startListening();
  }
}, 500);

function retryListening() {
  clearTimeout(listenRetry);
  listenRetry = setTimeout(() => { if (listenWanted && !state.ended) startListening(); }, 1000);
}

function stopListening(forget) {
  if (forget) listenWanted = false;
  if (listenPc) { const pc = listenPc; listenPc = null; pc.close(); }
  if (listenSession) { fetch(listenSession, { method: "DELETE" }).catch(() => {}); listenSession = null; }
}

// ---------------------------------------------------------------- speaking (WHIP)

async function startSpeaking() {
  try {
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    notice("No microphone: " + err.message);
    return;
  }
  const pc = new RTCPeerConnection();
  speakPc = pc;
  for (const track of micStream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  try {
    speakSession = await negotiate(pc, `/whip/${encodeURIComponent(roomId)}`, state.me.token);
    setSelfMuted(false);
    notice("You're live on stage.");
  } catch (err) {
    notice("Can't go on stage: " + err.message);
    stopSpeaking();
  }
  // Hear the room without yourself from now on.
  if (listenWanted) startListening();
  render();
}

function stopSpeaking() {
  if (speakPc) { speakPc.close(); speakPc = null; }
  if (speakSession) { fetch(speakSession, { method: "DELETE", headers: { Authorization: "Bearer " + token() } }).catch(() => {}); speakSession = null; }
  if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
}

function setSelfMuted(muted) {
  selfMuted = muted;
  if (micStream) micStream.getAudioTracks().forEach((t) => { t.enabled = !muted; });
}

function roleChanged(role) {
  if (role === "listener") {
    stopSpeaking();
    if (listenWanted) startListening();
    notice("You're back in the audience.");
  } else {
    setHand(false);
    state.invited = false;
    notice("You're on stage. Turn on your mic when you're ready.");
  }
}

// ---------------------------------------------------------------- the page

function setHand(up) { $("hand").setAttribute("aria-pressed", String(up)); }

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/);
  return ((parts[0] || "?")[0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
}

function roleLabel(role) {
  return { host: "Host", co_host: "Co-host", speaker: "Speaker", listener: "Listener" }[role] || role;
}

function button(label, onClick, extra) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  if (extra) b.setAttribute("aria-label", extra);
  return b;
}

// The stage and moderation lists are rebuilt only when what they list changes: voice levels
// arrive five times a second, and rebuilding on each would pull buttons out from under a click.
let stageKey = "";
let moderationKey = "";

function paintLevels() {
  for (const li of $("stage").children) {
    const m = state.stage.find((s) => String(s.id) === li.dataset.id);
    if (!m) continue;
    const level = state.levels.get(m.id) || 0;
    const speaking = level > 0.45 && !m.muted;
    li.classList.toggle("speaking", speaking);
    const avatar = li.querySelector(".avatar");
    if (avatar) avatar.style.setProperty("--level", m.muted ? 0 : Math.max(0, (level - 0.3) / 0.7).toFixed(2));
    const role = li.querySelector(".role");
    if (role) role.textContent = roleLabel(m.role) + (speaking ? " · speaking" : "");
  }
}

function renderStage() {
  const key = JSON.stringify([state.stage, isModerator(), myRole(), state.me && state.me.id]);
  if (key === stageKey) { paintLevels(); return; }
  stageKey = key;
  const list = $("stage");
  list.replaceChildren();
  const mod = isModerator();
  const mine = myRole();
  for (const m of state.stage) {
    const li = document.createElement("li");
    li.className = "member";
    li.dataset.id = m.id;
    const avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.textContent = initials(m.name);
    avatar.setAttribute("aria-hidden", "true");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = m.name;
    const role = document.createElement("div");
    role.className = "role";
    role.textContent = roleLabel(m.role);
    li.append(avatar, name, role);
    if (m.muted) {
      const mu = document.createElement("div");
      mu.className = "muted-icon";
      mu.textContent = "🔇 muted";
      li.append(mu);
    }
    const outranks = (mine === "host" && m.role !== "host") || (mine === "co_host" && m.role === "speaker");
    if (mod && outranks && state.me && m.id !== state.me.id) {
      const tools = document.createElement("div");
      tools.className = "tools";
      if (!m.muted) tools.append(button("Mute", () => send({ type: "mute", target: m.id }), `Mute ${m.name}`));
      tools.append(button("To audience", () => send({ type: "move_to_audience", target: m.id }), `Move ${m.name} to the audience`));
      if (mine === "host" && m.role === "speaker") tools.append(button("Make co-host", () => send({ type: "make_co_host", target: m.id }), `Make ${m.name} co-host`));
      if (mine === "host" && m.role === "co_host") tools.append(button("Unmake co-host", () => send({ type: "unmake_co_host", target: m.id }), `Unmake ${m.name} co-host`));
      tools.append(button("Remove", () => { if (confirm(`Remove ${m.name} from the room?`)) send({ type: "remove", target: m.id }); }, `Remove ${m.name}`));
      li.append(tools);
    }
    list.append(li);
  }
  paintLevels();
}

function renderModeration() {
  const mod = isModerator();
  $("mod").hidden = !mod || state.ended;
  if (!mod) return;
  const key = JSON.stringify([state.hands, [...state.audience], myRole(), state.me && state.me.id]);
  if (key === moderationKey) return;
  moderationKey = key;
  const hands = $("hands");
  hands.replaceChildren();
  for (const h of state.hands) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = "✋ " + h.name;
    li.append(who,
      button("Approve", () => send({ type: "approve", target: h.id }), `Approve ${h.name}`),
      button("Deny", () => send({ type: "deny", target: h.id }), `Deny ${h.name}`));
    hands.append(li);
  }
  $("no-hands").hidden = state.hands.length > 0;
  const audience = $("audience");
  audience.replaceChildren();
  for (const [id, name] of state.audience) {
    if (state.me && id === state.me.id) continue;
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = name;
    li.append(who,
      button("Invite to speak", () => send({ type: "invite", target: id }), `Invite ${name} to speak`),
      button("Remove", () => { if (confirm(`Remove ${name} from the room?`)) send({ type: "remove", target: id }); }, `Remove ${name}`));
    if (myRole() === "host") li.append(button("Make co-host", () => send({ type: "make_co_host", target: id }), `Make ${name} co-host`));
    audience.append(li);
  }
  $("end").hidden = myRole() !== "host";
}

function render() {
  const role = myRole();
  const stage = role !== "listener";
  $("live").hidden = state.ended;
  $("rec").hidden = !state.recording || state.ended;
  const n = state.listening;
  $("count").textContent = state.ended ? "" : `${n} listening · ${state.stage.length} on stage`;
  $("listen").hidden = !!listenPc && listenWanted;
  $("playing").hidden = !(listenPc && listenWanted);
  $("playing-text").textContent = listenPc && listenPc.connectionState === "connected" ? "Listening live" : "Connecting…";
  $("hand").hidden = stage || state.ended;
  $("hand").textContent = $("hand").getAttribute("aria-pressed") === "true" ? "✋ Lower hand" : "✋ Raise hand";
  $("invite").hidden = !state.invited || stage;
  // The host's voice is in the program the overlay publishes; co-hosts and speakers use the page.
  $("mic").hidden = !stage || role === "host" || !!speakPc || state.ended;
  $("mute").hidden = !stage || !speakPc;
  $("mute").textContent = selfMuted ? "🎙 Unmute" : "Mute";
  $("mute").setAttribute("aria-pressed", String(selfMuted));
  $("leave-stage").hidden = !stage || role === "host";
  renderStage();
  renderModeration();
}

function tick() {
  const s = Math.max(0, Math.floor((Date.now() - state.startedAt) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  $("elapsed").textContent = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
}

function floatEmoji(emoji) {
  const f = document.createElement("span");
  f.className = "floater";
  f.textContent = String(emoji).slice(0, 16);
  f.style.left = (10 + Math.random() * 80) + "%";
  $("floaters").append(f);
  setTimeout(() => f.remove(), 3200);
}

function ended(reason) {
  state.ended = true;
  stopSpeaking();
  stopListening(true);
  $("ended").hidden = false;
  $("player").hidden = true;
  $("me").hidden = true;
  state.levels.clear();
  document.querySelector(".stage-wrap").hidden = true;
  clearInterval(ticker);
  $("ended-text").textContent = reason === "host_gone" ? "The host left and the room closed." : "The host ended the room. Thanks for listening.";
  render();
}

function removed() {
  state.ended = true;
  stopSpeaking();
  stopListening(true);
  // The token stays: coming back with it is refused, so a reload says the same.
  $("ended").hidden = false;
  $("ended-title").textContent = "You were removed from this room";
  $("ended-text").textContent = "A moderator removed you. You can't rejoin this room.";
  $("player").hidden = true;
  $("me").hidden = true;
  $("mod").hidden = true;
  if (ws) { ws.onclose = null; ws.close(); }
}

// ---------------------------------------------------------------- wiring

$("listen").addEventListener("click", startListening);
$("name").addEventListener("change", (e) => {
  const name = e.target.value.trim();
  if (!name) return;
  localStorage.setItem("booth-name", name);
  send({ type: "set_name", name });
});
$("volume").addEventListener("input", (e) => { $("audio").volume = Number(e.target.value); });
$("hand").addEventListener("click", () => {
  const up = $("hand").getAttribute("aria-pressed") !== "true";
  setHand(up);
  notice(up ? "Hand raised. The hosts will see it." : "");
  send({ type: up ? "raise_hand" : "lower_hand" });
  render();
});
$("accept").addEventListener("click", () => { send({ type: "accept_invite" }); state.invited = false; render(); });
$("decline").addEventListener("click", () => { send({ type: "decline_invite" }); state.invited = false; render(); });
$("mic").addEventListener("click", startSpeaking);
$("mute").addEventListener("click", () => {
  if (selfMuted) { send({ type: "unmute" }); setSelfMuted(false); } else { send({ type: "mute_self" }); setSelfMuted(true); }
  render();
});
$("leave-stage").addEventListener("click", () => send({ type: "leave_stage" }));
$("leave").addEventListener("click", () => {
  stopSpeaking();
  stopListening(true);
  if (ws) { ws.onclose = null; ws.close(); }
  $("ended").hidden = false;
  $("ended-title").textContent = "You left the room";
  $("ended-text").textContent = "Open the link again to come back.";
  $("player").hidden = true;
  $("me").hidden = true;
  $("mod").hidden = true;
});
$("end").addEventListener("click", () => { if (confirm("End the room for everyone?")) send({ type: "end" }); });
for (const b of document.querySelectorAll(".react")) {
  b.addEventListener("click", () => send({ type: "react", emoji: b.dataset.emoji }));
}
window.addEventListener("beforeunload", () => { stopSpeaking(); stopListening(true); });

const ticker = setInterval(tick, 1000);
connect();
render();
