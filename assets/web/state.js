// The room as this page knows it, and the one place where it changes: `apply(state, msg, now)`
// takes any message of the room channel (src/server/protocol.md) and returns the new state, plus
// the few changes the page makes itself (a raised hand, a self-mute, a notice).
// Pure: no DOM, no WebSocket, no timers, no clock (time comes in as `now`), and a state is never
// changed in place, so the page can compare the state before a message with the one after.
// A message it cannot use leaves the state as it was; nothing a server or a network sends may
// make it throw. tests/web/state.test.mjs checks it under `node --test`, without a browser.

/** What the page knows before the room has welcomed it. */
export function initialState(now = 0) {
  return {
    me: null, // {id, role, name, token}: who the room says this page is
    actions: [], // the action types the room lets this page take (`welcome`, then `allowed`)
    room: null, // {title, game}, once welcomed
    stage: [], // [{id, name, role, muted}]
    hands: [], // [{id, name, raised_at_ms}]: sent to moderators only
    audience: new Map(), // id -> name, the listeners present (one page of them in a big room)
    listenerCount: 0, // people in the audience, all of them
    listening: 0,
    recording: false,
    live: false,
    startedAt: now,
    levels: new Map(), // id -> voice level 0..1, while someone speaks
    invited: false,
    handRaised: false,
    selfMuted: false,
    reactions: 0, // how many reactions arrived; the view floats one per new count
    lastReaction: "",
    notice: "",
    ended: null, // "host_ended" | "host_gone" | "unused": the room is over for everyone
    removed: false, // a moderator removed this page's person
    left: false, // the person left with the Leave button
    recordingFailed: "", // why the recording stopped (to moderators): shown until recording restarts
    episode: null, // {id, page, feed}: the episode the room records into (to moderators)
    // The host's episode panel, after the room ended (see "the episode" below):
    episodeView: null, // {id, title, status, error, page, feed} as the server last said
    episodeAsked: null, // the change on its way ("rename" | "publish" | "unlist" | "delete")
    episodeProblem: "", // the last change refused, or the server unreachable
    deleteArmed: false, // Delete was clicked once: the next click deletes
    episodeDeleted: false,
  };
}

// ---------------------------------------------------------------- reading the state

/** Whether the room lets this page take `action` (a protocol action type such as "mute"). */
export function may(state, action) {
  return state.actions.includes(action);
}

export function isMe(state, id) {
  return state.me !== null && state.me.id === id;
}

export function onStage(state, id) {
  return state.stage.some((m) => m.id === id);
}

/** This page's role as the stage shows it (the stage is what the room broadcast last). */
export function myRole(state) {
  if (!state.me) return "listener";
  const m = state.stage.find((s) => s.id === state.me.id);
  return m ? m.role : "listener";
}

const RANK = { host: 3, co_host: 2, speaker: 1, listener: 0 };

/** Whether this page's person ranks above `member`: moderators act only on lower ranks (the
 *  room enforces it too; the page just doesn't offer what would be refused). */
export function outranks(state, member) {
  return (RANK[myRole(state)] || 0) > (RANK[member.role] || 0);
}

/** Over for this page: the room ended, or this page's person was removed from it. */
export function isOver(state) {
  return state.ended !== null || state.removed;
}

/** The token that brings the mix-minus (everyone but oneself) when listening from the stage. */
export function listenBearer(state) {
  return state.me && onStage(state, state.me.id) ? state.me.token : null;
}

/** Whether this page is the person's microphone on stage: the host's voice is already in the
 *  program the overlay publishes, so only co-hosts and speakers speak through the page. */
export function speaksFromPage(state) {
  return may(state, "mute_self") && myRole(state) !== "host";
}

// ---------------------------------------------------------------- changes the page makes

export function withNotice(state, text) {
  return { ...state, notice: text || "" };
}

export function withHand(state, up) {
  return { ...state, handRaised: up, notice: up ? "Hand raised. The hosts will see it." : "" };
}

export function inviteAnswered(state) {
  return { ...state, invited: false };
}

export function withSelfMuted(state, muted) {
  return { ...state, selfMuted: muted };
}

/** Nobody has spoken for a moment: no one shows as speaking. */
export function withoutLevels(state) {
  return state.levels.size ? { ...state, levels: new Map() } : state;
}

export function leftRoom(state) {
  return { ...state, left: true };
}

export function removedFromRoom(state) {
  return { ...state, removed: true };
}

function endRoom(state, reason) {
  return { ...state, ended: ["host_gone", "unused"].includes(reason) ? reason : "host_ended", levels: new Map() };
}

// ---------------------------------------------------------------- what the wire may carry

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v) => typeof v === "number" && Number.isFinite(v);
const text = (v) => (typeof v === "string" ? v : "");
const count = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

function stageOf(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((m) => isObject(m) && isId(m.id))
    .map((m) => ({ id: m.id, name: text(m.name), role: text(m.role), muted: m.muted === true }));
}

function handsOf(list) {
  if (!Array.isArray(list)) return [];
  return list
    .filter((h) => isObject(h) && isId(h.id))
    .map((h) => ({ id: h.id, name: text(h.name), raised_at_ms: count(h.raised_at_ms) }));
}

function audienceOf(list) {
  if (!Array.isArray(list)) return new Map();
  return new Map(list.filter((a) => isObject(a) && isId(a.id)).map((a) => [a.id, text(a.name)]));
}

function episodeOf(e) {
  if (!isObject(e) || !isId(e.id)) return null;
  return { id: e.id, page: text(e.page), feed: text(e.feed) };
}

function actionsOf(list) {
  return Array.isArray(list) ? list.filter((a) => typeof a === "string") : [];
}

// ---------------------------------------------------------------- the room's messages

function welcome(state, msg, now) {
  const you = msg.you;
  if (!isObject(you) || !isId(you.id)) return state;
  const r = isObject(msg.room) ? msg.room : {};
  const next = {
    ...state,
    me: { id: you.id, role: text(you.role) || "listener", name: text(you.name), token: text(you.token) },
    actions: actionsOf(you.actions),
    room: { title: text(r.title) || "Booth room", game: text(r.game) },
    startedAt: now - count(r.elapsed_ms),
    stage: stageOf(r.stage),
    hands: handsOf(r.hand_queue),
    recording: r.recording === true,
    live: r.live === true,
    listening: count(r.listening),
    audience: audienceOf(r.audience),
    listenerCount: count(r.listener_count),
    episode: episodeOf(r.episode) || state.episode,
  };
  return r.ended === true ? endRoom(next, "host_ended") : next;
}

function joined(state, msg) {
  if (!isId(msg.id) || msg.role !== "listener") return state;
  return { ...state, audience: new Map(state.audience).set(msg.id, text(msg.name)) };
}

function left(state, msg) {
  if (!isId(msg.id)) return state;
  const audience = new Map(state.audience);
  audience.delete(msg.id);
  return { ...state, audience, hands: state.hands.filter((h) => h.id !== msg.id) };
}

function handRaised(state, msg) {
  const [entry] = handsOf([msg.entry]);
  if (!entry) return state;
  return { ...state, hands: [...state.hands.filter((h) => h.id !== entry.id), entry] };
}

function roleChanged(state, msg) {
  if (!isId(msg.id) || typeof msg.role !== "string") return state;
  const audience = new Map(state.audience);
  if (msg.role === "listener") {
    const m = state.stage.find((s) => s.id === msg.id);
    if (m) audience.set(msg.id, m.name);
  } else audience.delete(msg.id);
  const next = { ...state, audience };
  if (!isMe(state, msg.id)) return next;
  next.me = { ...state.me, role: msg.role };
  if (msg.role === "listener") return { ...next, notice: "You're back in the audience." };
  return { ...next, handRaised: false, invited: false, notice: "You're on stage. Turn on your mic when you're ready." };
}

function renamed(state, msg) {
  if (!isId(msg.id) || typeof msg.name !== "string") return state;
  const next = { ...state, hands: state.hands.map((h) => (h.id === msg.id ? { ...h, name: msg.name } : h)) };
  if (state.audience.has(msg.id)) next.audience = new Map(state.audience).set(msg.id, msg.name);
  if (isMe(state, msg.id)) next.me = { ...state.me, name: msg.name };
  return next;
}

function removed(state, msg) {
  if (!isId(msg.id)) return state;
  const audience = new Map(state.audience);
  audience.delete(msg.id);
  const next = { ...state, audience };
  return isMe(state, msg.id) ? removedFromRoom(next) : next;
}

function levels(state, msg) {
  if (!Array.isArray(msg.levels)) return state;
  const next = new Map(state.levels);
  for (const pair of msg.levels) {
    if (Array.isArray(pair) && isId(pair[0]) && typeof pair[1] === "number") next.set(pair[0], pair[1]);
  }
  return { ...state, levels: next };
}

function error(state, msg) {
  if (msg.code === "removed") return removedFromRoom(state);
  if (msg.code === "recording_failed") {
    const why = text(msg.message) || "a write failed";
    return { ...state, recording: false, recordingFailed: `Recording failed (${why}). The room goes on unrecorded: free disk space or fix the server's data folder, then record again.` };
  }
  return withNotice(state, text(msg.message));
}

const unchanged = (state) => state;

/** What each server message does to the state; the types are `ServerMsg` in protocol.md. */
const ON = new Map([
  ["welcome", welcome],
  ["allowed", (s, m) => (Array.isArray(m.actions) ? { ...s, actions: actionsOf(m.actions) } : s)],
  ["ok", unchanged],
  ["pong", unchanged],
  ["error", error],
  ["joined", joined],
  ["left", left],
  ["role_changed", roleChanged],
  ["stage_changed", (s, m) => (Array.isArray(m.stage) ? { ...s, stage: stageOf(m.stage) } : s)],
  ["hand_queue", (s, m) => (Array.isArray(m.queue) ? { ...s, hands: handsOf(m.queue) } : s)],
  ["hand_raised", handRaised],
  ["hand_lowered", (s, m) => (isId(m.id) ? { ...s, hands: s.hands.filter((h) => h.id !== m.id) } : s)],
  ["invited", (s) => ({ ...s, invited: true })],
  ["invite_declined", unchanged],
  ["hand_denied", (s) => ({ ...s, handRaised: false, notice: "The hosts didn't bring you on stage this time." })],
  ["muted", (s, m) => (isMe(s, m.id) ? { ...s, selfMuted: true, notice: "A moderator muted you. Unmute when you're ready." } : s)],
  ["unmuted", unchanged],
  ["removed", removed],
  ["reaction", (s, m) => (typeof m.emoji === "string" ? { ...s, reactions: s.reactions + 1, lastReaction: m.emoji.slice(0, 16) } : s)],
  ["moment", unchanged],
  ["recording", (s, m) => ({ ...s, recording: m.on === true, recordingFailed: m.on === true ? "" : s.recordingFailed })],
  ["episode", (s, m) => (episodeOf(m) ? { ...s, episode: episodeOf(m) } : s)],
  ["listener_count", (s, m) => ({ ...s, listenerCount: count(m.count) })],
  ["audience", (s, m) => ({ ...s, listening: count(m.listening) })],
  ["levels", levels],
  ["host_away", (s) => withNotice(s, "The host dropped out; the room waits for them.")],
  ["host_back", (s) => withNotice(s, "")],
  ["host_changed", (s) => withNotice(s, "There's a new host.")],
  ["renamed", renamed],
  ["ended", (s, m) => endRoom(s, m.reason)],
]);

/** The state after the room's message `msg` arrived at time `now` (ms, any clock). */
export function apply(state, msg, now = 0) {
  if (!isObject(msg) || typeof msg.type !== "string") return state;
  const on = ON.get(msg.type);
  return on ? on(state, msg, now) : state;
}

// ---------------------------------------------------------------- the episode, after the room

const SETTLED = ["published", "unlisted", "failed"];

/** Whether the page shows the host's episode panel: the room recorded an episode and is over. */
export function showsEpisode(state) {
  return state.ended !== null && state.episode !== null && myRole(state) === "host";
}

/** Whether the page still waits for the episode to be rendered (it asks the server again). */
export function awaitsEpisode(state) {
  return showsEpisode(state) && !state.episodeDeleted && !(state.episodeView && SETTLED.includes(state.episodeView.status));
}

/** Whether the host can change the episode now: rendered, and no change on its way. */
export function canChangeEpisode(state) {
  const v = state.episodeView;
  return !!v && !state.episodeDeleted && state.episodeAsked === null && (v.status === "published" || v.status === "unlisted");
}

/**
 * The HTTP request for `what` on the room's episode (`fetch(req.url, req)`), or null when it
 * cannot be asked now: "get"; {title} to rename; "publish" or "unlist"; "delete". Changes carry
 * the host's token.
 */
export function episodeRequest(state, what) {
  if (!state.episode) return null;
  const url = `/api/episodes/${state.episode.id}`;
  if (what === "get") return { url, method: "GET", headers: {} };
  if (!canChangeEpisode(state) || !state.me) return null;
  const headers = { authorization: `Bearer ${state.me.token}` };
  if (what === "delete") return { url, method: "DELETE", headers };
  let change = null;
  if (what === "publish" || what === "unlist") change = { status: what === "publish" ? "published" : "unlisted" };
  else if (isObject(what) && typeof what.title === "string" && what.title.trim()) change = { title: what.title.trim() };
  if (!change) return null;
  return { url, method: "PATCH", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(change) };
}

/** A change is on its way (`what`: "rename" | "publish" | "unlist" | "delete"). */
export function episodeAsked(state, what) {
  return { ...state, episodeAsked: what, deleteArmed: false, episodeProblem: "" };
}

/** The server's answer to an episode request: `status` (HTTP) and its JSON `body` (or null). */
export function episodeAnswered(state, status, body) {
  const next = { ...state, episodeAsked: null };
  if (status === 204 || status === 404) return { ...next, episodeDeleted: true };
  if (status >= 200 && status < 300 && isObject(body) && isId(body.id)) {
    return {
      ...next,
      episodeProblem: "",
      episodeView: {
        id: body.id, title: text(body.title), status: text(body.status), error: text(body.error),
        page: text(body.page) || (state.episode ? state.episode.page : ""),
        feed: text(body.feed) || (state.episode ? state.episode.feed : ""),
      },
    };
  }
  const why = isObject(body) && typeof body.message === "string" ? body.message : `the server refused (${status})`;
  return { ...next, episodeProblem: why };
}

/** The server could not be reached. */
export function episodeUnreachable(state, why) {
  return { ...state, episodeAsked: null, episodeProblem: `Can't reach the server: ${text(why) || "no answer"}` };
}

/** Delete clicked: the first click arms it, the second (returns `delete: true`) deletes. */
export function deleteClicked(state) {
  return state.deleteArmed ? { state: { ...state, deleteArmed: false }, delete: true } : { state: { ...state, deleteArmed: true }, delete: false };
}

/** Delete was not meant: the armed Delete is forgotten. */
export function deleteDisarmed(state) {
  return state.deleteArmed ? { ...state, deleteArmed: false } : state;
}
