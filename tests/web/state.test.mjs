// The web room client's state (assets/web/state.js) under `node --test`, with no browser and no
// booth: each server message of src/server/protocol.md fed to `apply`, and the state a person
// would see after it. Run alone with  node --test tests/web/state.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  apply, awaitsEpisode, canChangeEpisode, deleteClicked, deleteDisarmed, episodeAnswered, episodeAsked,
  episodeRequest, episodeUnreachable, showsEpisode,
} from "../../assets/web/state.js";
import {
  initialState, isOver, listenBearer, may, myRole, outranks, speaksFromPage, withHand,
  withoutLevels, withSelfMuted,
} from "../../assets/web/state.js";

const LISTENER_ACTIONS = ["raise_hand", "lower_hand", "accept_invite", "decline_invite", "react", "set_name"];
const SPEAKER_ACTIONS = ["leave_stage", "unmute", "mute_self", "react", "set_name"];
const HOST = { id: 1, name: "Host", role: "host", muted: false };

/** A page welcomed as listener 7 ("Ada") at t = 100 s into a room live for 65 s. */
function welcomed(room = {}) {
  return apply(initialState(0), {
    v: 1,
    type: "welcome",
    you: { id: 7, role: "listener", name: "Ada", token: "p7.secret", actions: LISTENER_ACTIONS },
    room: {
      title: "Stage night", game: "Elden Ring", elapsed_ms: 65000, stage: [HOST], listener_count: 2,
      recording: false, ended: false, host_away: false, audience: [{ id: 7, name: "Ada" }, { id: 8, name: "Bo" }],
      listening: 3, live: true, ...room,
    },
  }, 100000);
}

/** `welcomed()`, then on stage as a speaker: what the server sends when a raised hand is approved. */
function onStageAsSpeaker() {
  let s = withHand(welcomed(), true);
  s = apply(s, { v: 1, type: "role_changed", id: 7, role: "speaker" });
  s = apply(s, { v: 1, type: "allowed", actions: SPEAKER_ACTIONS });
  return apply(s, { v: 1, type: "stage_changed", stage: [HOST, { id: 7, name: "Ada", role: "speaker", muted: false }] });
}

test("a welcome says who I am, what I may do and what the room is like", () => {
  const s = welcomed();
  assert.deepEqual(s.me, { id: 7, role: "listener", name: "Ada", token: "p7.secret" });
  assert.deepEqual(s.actions, LISTENER_ACTIONS);
  assert.ok(may(s, "raise_hand"));
  assert.ok(!may(s, "mute"));
  assert.deepEqual(s.room, { title: "Stage night", game: "Elden Ring" });
  assert.equal(s.startedAt, 35000);
  assert.deepEqual(s.stage, [HOST]);
  assert.deepEqual([...s.audience], [[7, "Ada"], [8, "Bo"]]);
  assert.equal(s.listening, 3);
  assert.equal(myRole(s), "listener");
  assert.equal(listenBearer(s), null);
  assert.equal(isOver(s), false);
});

test("a welcome into a room without a title, or one that has ended", () => {
  assert.equal(welcomed({ title: "" }).room.title, "Booth room");
  const ended = welcomed({ ended: true });
  assert.equal(ended.ended, "host_ended");
  assert.ok(isOver(ended));
});

test("apply returns a new state and leaves the one it was given alone", () => {
  const before = welcomed();
  const copy = structuredClone(before);
  const after = apply(before, { v: 1, type: "joined", id: 9, name: "Cy", role: "listener" });
  assert.notEqual(after, before);
  assert.deepEqual(before, copy);
  assert.equal(after.audience.get(9), "Cy");
});

test("listeners come and go; a raised hand shows in the moderators' queue", () => {
  let s = apply(welcomed(), { v: 1, type: "joined", id: 9, name: "Cy", role: "listener" });
  s = apply(s, { v: 1, type: "joined", id: 10, name: "Di", role: "speaker" });
  assert.deepEqual([...s.audience.keys()], [7, 8, 9]);
  s = apply(s, { v: 1, type: "hand_queue", queue: [{ id: 9, name: "Cy", raised_at_ms: 1200 }] });
  assert.deepEqual(s.hands, [{ id: 9, name: "Cy", raised_at_ms: 1200 }]);
  s = apply(s, { v: 1, type: "left", id: 9 });
  assert.deepEqual(s.hands, []);
  assert.equal(s.audience.has(9), false);
});

test("moderators follow the hand queue by its changes, and a big room's audience by its count", () => {
  let s = apply(welcomed(), { v: 1, type: "hand_queue", queue: [{ id: 8, name: "Bo", raised_at_ms: 5 }] });
  s = apply(s, { v: 1, type: "hand_raised", entry: { id: 9, name: "Cy", raised_at_ms: 1200 } });
  assert.deepEqual(s.hands.map((h) => h.id), [8, 9]);
  s = apply(s, { v: 1, type: "hand_lowered", id: 8 });
  assert.deepEqual(s.hands, [{ id: 9, name: "Cy", raised_at_ms: 1200 }]);
  s = apply(s, { v: 1, type: "listener_count", count: 250 });
  assert.equal(s.listenerCount, 250);
  assert.equal(apply(s, { v: 1, type: "hand_raised", entry: null }), s);
});

test("my hand raised, then denied", () => {
  const raised = withHand(welcomed(), true);
  assert.equal(raised.handRaised, true);
  const denied = apply(raised, { v: 1, type: "hand_denied", id: 7 });
  assert.equal(denied.handRaised, false);
  assert.match(denied.notice, /didn't bring you on stage/);
});

test("brought on stage: my role, my actions, my hand down, and the mix-minus to listen to", () => {
  const s = onStageAsSpeaker();
  assert.equal(s.me.role, "speaker");
  assert.equal(myRole(s), "speaker");
  assert.equal(s.handRaised, false);
  assert.equal(s.invited, false);
  assert.match(s.notice, /You're on stage/);
  assert.equal(s.audience.has(7), false);
  assert.ok(may(s, "leave_stage") && may(s, "mute_self"));
  assert.ok(!may(s, "raise_hand"));
  assert.ok(speaksFromPage(s));
  assert.equal(listenBearer(s), "p7.secret");
});

test("back in the audience: listed there again, and told so", () => {
  let s = apply(onStageAsSpeaker(), { v: 1, type: "role_changed", id: 7, role: "listener" });
  s = apply(s, { v: 1, type: "allowed", actions: LISTENER_ACTIONS });
  s = apply(s, { v: 1, type: "stage_changed", stage: [HOST] });
  assert.equal(s.audience.get(7), "Ada");
  assert.match(s.notice, /back in the audience/);
  assert.ok(may(s, "raise_hand"));
  assert.equal(speaksFromPage(s), false);
});

test("someone else's role change is theirs only", () => {
  const before = welcomed();
  const s = apply(before, { v: 1, type: "role_changed", id: 8, role: "speaker" });
  assert.equal(s.me, before.me);
  assert.equal(s.audience.has(8), false);
  assert.equal(s.notice, "");
});

test("rank: a co-host acts on speakers, not on the host or another co-host", () => {
  let s = welcomed();
  s = apply(s, { v: 1, type: "stage_changed", stage: [HOST, { id: 7, name: "Ada", role: "co_host", muted: false }] });
  assert.ok(outranks(s, { id: 3, role: "speaker" }));
  assert.ok(!outranks(s, { id: 4, role: "co_host" }));
  assert.ok(!outranks(s, HOST));
});

test("the host does not speak from the page: its voice is in the overlay's program", () => {
  let s = apply(welcomed(), { v: 1, type: "stage_changed", stage: [{ ...HOST, id: 7 }] });
  s = apply(s, { v: 1, type: "allowed", actions: ["mute", "mute_self", "unmute", "end"] });
  assert.equal(myRole(s), "host");
  assert.equal(speaksFromPage(s), false);
});

test("voice levels arrive, then fade", () => {
  let s = apply(welcomed(), { v: 1, type: "levels", levels: [[1, 0.8], [7, 0.1]] });
  s = apply(s, { v: 1, type: "levels", levels: [[1, 0.5]] });
  assert.deepEqual([...s.levels], [[1, 0.5], [7, 0.1]]);
  assert.equal(withoutLevels(s).levels.size, 0);
});

test("renamed: in the audience, in the hand queue, and me", () => {
  let s = apply(welcomed(), { v: 1, type: "hand_queue", queue: [{ id: 8, name: "Bo", raised_at_ms: 5 }] });
  s = apply(s, { v: 1, type: "renamed", id: 8, name: "Bob" });
  s = apply(s, { v: 1, type: "renamed", id: 7, name: "Ada L." });
  assert.equal(s.audience.get(8), "Bob");
  assert.equal(s.hands[0].name, "Bob");
  assert.equal(s.me.name, "Ada L.");
  assert.equal(s.audience.get(7), "Ada L.");
});

test("muted by a moderator, while speaking", () => {
  const s = apply(onStageAsSpeaker(), { v: 1, type: "muted", id: 7, by: 1 });
  assert.equal(s.selfMuted, true);
  assert.match(s.notice, /A moderator muted you/);
  const other = apply(welcomed(), { v: 1, type: "muted", id: 1, by: 2 });
  assert.equal(other.selfMuted, false);
  assert.equal(withSelfMuted(s, false).selfMuted, false);
});

test("removed: someone else leaves the audience; me, the room is over for this page", () => {
  const other = apply(welcomed(), { v: 1, type: "removed", id: 8 });
  assert.equal(other.audience.has(8), false);
  assert.equal(isOver(other), false);
  const me = apply(welcomed(), { v: 1, type: "removed", id: 7 });
  assert.equal(me.removed, true);
  assert.ok(isOver(me));
  const refused = apply(initialState(0), { v: 1, type: "error", code: "removed", message: "You were removed." });
  assert.equal(refused.removed, true);
});

test("ended, by the host or because the host is gone", () => {
  const speaking = apply(welcomed(), { v: 1, type: "levels", levels: [[1, 0.9]] });
  const s = apply(speaking, { v: 1, type: "ended", reason: "host_gone" });
  assert.equal(s.ended, "host_gone");
  assert.equal(s.levels.size, 0);
  assert.ok(isOver(s));
  assert.equal(apply(welcomed(), { v: 1, type: "ended", reason: "host_ended" }).ended, "host_ended");
  assert.equal(apply(welcomed(), { v: 1, type: "ended", reason: "unused" }).ended, "unused");
});

test("an error is told to the person", () => {
  const s = apply(welcomed(), { v: 1, type: "error", code: "stage_full", message: "The stage is full." });
  assert.equal(s.notice, "The stage is full.");
  assert.equal(isOver(s), false);
});

test("invitations, reactions, recording, audience size and the host's absence", () => {
  let s = apply(welcomed(), { v: 1, type: "invited", by: 1 });
  assert.equal(s.invited, true);
  s = apply(s, { v: 1, type: "reaction", id: 8, emoji: "🔥".repeat(20) });
  assert.equal(s.reactions, 1);
  assert.equal(s.lastReaction, "🔥".repeat(8));
  s = apply(s, { v: 1, type: "recording", on: true });
  assert.equal(s.recording, true);
  s = apply(s, { v: 1, type: "audience", listening: 12 });
  assert.equal(s.listening, 12);
  s = apply(s, { v: 1, type: "host_away", until_ms: 60000 });
  assert.match(s.notice, /host dropped out/);
  s = apply(s, { v: 1, type: "host_back", id: 1 });
  assert.equal(s.notice, "");
});

test("messages that change nothing here leave the state as it was", () => {
  const s = welcomed();
  for (const msg of [
    { v: 1, type: "ok", ref: 1 }, { v: 1, type: "pong", ref: 2 }, { v: 1, type: "unmuted", id: 1 },
    { v: 1, type: "invite_declined", id: 8 },
    { v: 1, type: "moment", at_ms: 5, label: "boss", by: 1 }, { v: 1, type: "some_future_message" },
  ]) assert.equal(apply(s, msg), s, JSON.stringify(msg));
});

const JUNK = [
  null, undefined, 42, "welcome", [], {}, { type: 5 }, { type: "__proto__" }, { type: "constructor" },
  { type: "toString" }, { type: "welcome" }, { type: "welcome", you: "me" }, { type: "welcome", you: { id: "7" } },
  { type: "allowed", actions: "all" }, { type: "joined" }, { type: "left", id: {} }, { type: "role_changed", id: 7 },
  { type: "stage_changed", stage: {} }, { type: "hand_queue", queue: null }, { type: "muted" },
  { type: "hand_raised" }, { type: "hand_raised", entry: { id: "x" } }, { type: "hand_lowered", id: [] },
  { type: "listener_count", count: "lots" },
  { type: "removed", id: null }, { type: "reaction", emoji: { toString: null } }, { type: "renamed", id: 7, name: 5 },
  { type: "levels", levels: "loud" }, { type: "levels", levels: [null, [1], ["a", 2], [3, "loud"]] },
  { type: "audience", listening: "many" }, { type: "error" }, { type: "ended" },
];

test("junk from the wire never throws, and keeps the state usable", () => {
  for (const start of [initialState(0), welcomed(), onStageAsSpeaker()]) {
    let s = start;
    for (const msg of JUNK) {
      assert.doesNotThrow(() => { s = apply(s, msg, 1000); }, JSON.stringify(msg));
    }
    assert.deepEqual(s.me, start.me);
    assert.deepEqual(s.stage, start.stage);
    assert.ok(Array.isArray(s.actions));
  }
});

test("junk inside a list is dropped, the rest kept", () => {
  let s = apply(welcomed(), { v: 1, type: "stage_changed", stage: [null, 5, { id: "x" }, { id: 2, name: 3, role: "speaker" }] });
  assert.deepEqual(s.stage, [{ id: 2, name: "", role: "speaker", muted: false }]);
  s = apply(s, { v: 1, type: "allowed", actions: [1, "react", null] });
  assert.deepEqual(s.actions, ["react"]);
  s = apply(s, { v: 1, type: "levels", levels: [null, [1], ["a", 2], [2, 0.7]] });
  assert.deepEqual([...s.levels], [[2, 0.7]]);
});

// ---------------------------------------------------------------- the episode, after the room

/** The host's page in a room that records episode 7, welcomed as the server does. */
function hostRecording() {
  return apply(initialState(0), {
    v: 1,
    type: "welcome",
    you: { id: 1, role: "host", name: "Host", token: "p1.hostsecret", actions: ["end", "mute", "approve"] },
    room: {
      title: "Boss rush", game: "", elapsed_ms: 0, stage: [HOST], listener_count: 0, recording: true,
      ended: false, host_away: false, audience: [], listening: 0, live: true,
      episode: { id: 7, page: "http://h/episodes/7", feed: "http://h/podcast.xml" },
    },
  }, 0);
}

/** `GET /api/episodes/7`'s answer (the Episode fields flattened, plus its links). */
function episodeBody(status, extra = {}) {
  return {
    id: 7, guid: "g7", room: "r", title: "Boss rush", status, error: null, duration_ms: 60000,
    chapters: [], people: [], page: "http://h/episodes/7", audio: null, alternate: "http://h/m/7/p.opus",
    chapters_url: null, feed: "http://h/podcast.xml", ...extra,
  };
}

test("a recording that fails is a notice for moderators until recording starts again", () => {
  let s = hostRecording();
  s = apply(s, { v: 1, type: "error", code: "recording_failed", message: "recording stopped: No space left on device" });
  assert.equal(s.recording, false);
  assert.match(s.recordingFailed, /No space left on device/);
  assert.match(s.recordingFailed, /goes on unrecorded/);
  assert.equal(apply(s, { v: 1, type: "recording", on: true }).recordingFailed, "");
});

test("the host's page follows the episode after the room ends, until it is rendered", () => {
  let s = hostRecording();
  assert.deepEqual(s.episode, { id: 7, page: "http://h/episodes/7", feed: "http://h/podcast.xml" });
  assert.equal(showsEpisode(s), false, "not while the room is live");
  s = apply(s, { v: 1, type: "ended", reason: "host_ended" });
  assert.ok(showsEpisode(s));
  assert.ok(awaitsEpisode(s));
  assert.deepEqual(episodeRequest(s, "get"), { url: "/api/episodes/7", method: "GET", headers: {} });
  assert.equal(episodeRequest(s, "delete"), null, "nothing to change before it is rendered");
  s = episodeAnswered(s, 200, episodeBody("rendering"));
  assert.ok(awaitsEpisode(s));
  assert.equal(canChangeEpisode(s), false);
  s = episodeAnswered(s, 200, episodeBody("published"));
  assert.equal(awaitsEpisode(s), false);
  assert.ok(canChangeEpisode(s));
  assert.equal(s.episodeView.page, "http://h/episodes/7");
  assert.equal(s.episodeView.feed, "http://h/podcast.xml");
  // A failed render says why, and the page stops asking.
  const failed = episodeAnswered(s, 200, episodeBody("failed", { error: "ffmpeg is missing" }));
  assert.equal(failed.episodeView.error, "ffmpeg is missing");
  assert.equal(awaitsEpisode(failed), false);
});

test("a listener's page, or a room that records nothing, shows no episode panel", () => {
  assert.equal(showsEpisode(apply(welcomed(), { v: 1, type: "ended", reason: "host_ended" })), false);
  const listenerOfRecordedRoom = apply(welcomed({ episode: { id: 7, page: "p", feed: "f" } }), { v: 1, type: "ended", reason: "host_ended" });
  assert.equal(showsEpisode(listenerOfRecordedRoom), false);
  // The `episode` message (recording started mid-room) is taken in too.
  const s = apply(hostRecording(), { v: 1, type: "episode", id: 9, page: "p9", feed: "f" });
  assert.equal(s.episode.id, 9);
});

test("rename, unlist and delete are PATCH and DELETE with the host's token, one at a time", () => {
  let s = apply(hostRecording(), { v: 1, type: "ended", reason: "host_ended" });
  s = episodeAnswered(s, 200, episodeBody("published"));
  const bearer = "Bearer p1.hostsecret";
  const rename = episodeRequest(s, { title: "  Boss rush, part 2 " });
  assert.equal(rename.method, "PATCH");
  assert.equal(rename.headers.authorization, bearer);
  assert.deepEqual(JSON.parse(rename.body), { title: "Boss rush, part 2" });
  assert.equal(episodeRequest(s, { title: "   " }), null, "an episode needs a title");
  assert.deepEqual(JSON.parse(episodeRequest(s, "unlist").body), { status: "unlisted" });
  assert.deepEqual(JSON.parse(episodeRequest(s, "publish").body), { status: "published" });
  s = episodeAsked(s, "unlist");
  assert.equal(episodeRequest(s, "delete"), null, "one change at a time");
  s = episodeAnswered(s, 200, episodeBody("unlisted"));
  assert.equal(s.episodeView.status, "unlisted");
  // Delete takes a second click; "Keep it" forgets the first.
  let click = deleteClicked(s);
  assert.equal(click.delete, false);
  assert.equal(deleteDisarmed(click.state).deleteArmed, false);
  click = deleteClicked(click.state);
  assert.equal(click.delete, true);
  const del = episodeRequest(click.state, "delete");
  assert.deepEqual(del, { url: "/api/episodes/7", method: "DELETE", headers: { authorization: bearer } });
  s = episodeAnswered(episodeAsked(click.state, "delete"), 204, null);
  assert.ok(s.episodeDeleted);
  assert.equal(awaitsEpisode(s), false);
});

test("a refused change says why; an unreachable server too", () => {
  let s = apply(hostRecording(), { v: 1, type: "ended", reason: "host_ended" });
  s = episodeAnswered(s, 200, episodeBody("published"));
  const refused = episodeAnswered(episodeAsked(s, "rename"), 401, { error: "unauthorized", message: "only the host who recorded an episode can change it" });
  assert.equal(refused.episodeProblem, "only the host who recorded an episode can change it");
  assert.ok(canChangeEpisode(refused));
  assert.match(episodeUnreachable(s, "Failed to fetch").episodeProblem, /Failed to fetch/);
  assert.equal(episodeAnswered(s, 500, "junk").episodeProblem, "the server refused (500)");
});
