// A recorded room's episode in a real browser (Debian's Chromium, driven by playwright-core): a room
// recorded by a real `booth serve` with a real `booth host` publishing a tone, a moment marked,
// the room ended. The host's page (open as the room ends) shows the episode when it is ready,
// renames, unlists, publishes and deletes it; the episode's page plays, and clicking a chapter
// seeks the player to it.
// Run by tests/run:  node --test tests/web/

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { act, api, booth, browser, serve, SHOTS, silence, takeCspViolations, tone, work } from "./harness.mjs";

// The server's Content-Security-Policy refuses nothing these pages do.
afterEach(() => assert.deepEqual(takeCspViolations(), []));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A room recording from its start, with a `booth host` publishing a 440 Hz tone. */
async function recordingRoom() {
  const url = await serve(join(work, "data"));
  const created = await api(`${url}/api/rooms`, "POST", { title: "Chapters & seeking", record: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { id: room, host_token: token, episode } = created.body;
  const game = tone("game.wav", 20, 440, 2);
  const mic = silence("mic.wav", 20);
  await booth(["host", "--headless", "--server", url, "--room", room, "--token", token,
    "--game-file", game, "--mic-file", mic, "--seconds", "20"], "listen: ");
  return { url, room, token, id: episode.id };
}

/** A moment marked at 6 s, the room ended at 14 s (of its recording). */
async function markAndEnd({ url, room, token, id }) {
  const started = (await api(`${url}/api/episodes/${id}`, "GET")).body.started_ms;
  await sleep(Math.max(0, started + 6000 - Date.now()));
  const marked = await act(url, room, token, { type: "mark_moment", label: "Boss fight" });
  assert.equal(marked.status, 204, JSON.stringify(marked.body));
  await sleep(Math.max(0, started + 14000 - Date.now()));
  assert.equal((await act(url, room, token, { type: "end" })).status, 204);
}

/** Waits until the episode's API answer passes `ok`. */
async function episodeWhere(url, id, ok, what) {
  for (let i = 0; i < 120; i++) {
    const e = await api(`${url}/api/episodes/${id}`, "GET");
    if (ok(e)) return e.body;
    assert.notEqual(e.body && e.body.status, "failed", JSON.stringify(e.body));
    await sleep(500);
  }
  throw new Error(`the episode was not ${what} within 60 s`);
}

/** The host's page, open while the room ends, follows the episode and renames, unlists and
 *  publishes it. */
async function hostManages(host, room) {
  await host.waitForFunction(() => document.getElementById("episode-title").textContent === "Episode ready",
    null, { timeout: 60000 });
  await host.screenshot({ path: join(SHOTS, "host-episode-ready.png") });
  await host.fill("#episode-name", "Boss fight night");
  await host.click("#episode-rename");
  await episodeWhere(room.url, room.id, (e) => e.body.title === "Boss fight night", "renamed");
  await host.waitForFunction(() => !document.getElementById("episode-listing").disabled);
  await host.click("#episode-listing");
  await episodeWhere(room.url, room.id, (e) => e.body.status === "unlisted", "unlisted");
  await host.waitForFunction(() => document.getElementById("episode-listing").textContent === "Publish");
  await host.click("#episode-listing");
  return episodeWhere(room.url, room.id, (e) => e.body.status === "published", "published again");
}

/** The episode's page plays, and a chapter click seeks to the chapter. */
async function pagePlaysAndSeeks(page, episode) {
  await page.goto(episode.page);
  await page.waitForFunction(() => document.getElementById("player").readyState >= 1, null, { timeout: 15000 });
  await page.evaluate(() => document.getElementById("player").play());
  await page.waitForFunction(() => document.getElementById("player").currentTime > 0.5, null, { timeout: 15000 });
  const chapters = await page.$$eval(".chapter[data-start]", (els) => els.map((e) => [Number(e.dataset.start), e.textContent]));
  const at = chapters.findIndex(([, label]) => label.includes("Boss fight"));
  assert.ok(at >= 0, `no "Boss fight" chapter on the page: ${JSON.stringify(chapters)}`);
  const boss = chapters[at];
  assert.ok(Math.abs(boss[0] - 6) <= 0.5, `the chapter starts at ${boss[0]} s`);
  await page.locator(".chapter[data-start]").nth(at).click();
  await page.waitForFunction((start) => {
    const p = document.getElementById("player");
    return !p.paused && p.currentTime >= start && p.currentTime < start + 3;
  }, boss[0], { timeout: 10000 });
  await page.screenshot({ path: join(SHOTS, "episode-page.png") });
}

test("a recorded room's episode: the host renames and unlists it on their page; its page plays and seeks; the host deletes it",
  { timeout: 180000 }, async () => {
    const room = await recordingRoom();
    const ctx = await browser({ width: 900, height: 900 });
    const host = await ctx.newPage();
    await host.goto(`${room.url}/r/${room.room}#token=${room.token}`);
    await host.waitForFunction(() => document.body.textContent.includes("Chapters & seeking"), null, { timeout: 15000 });
    await markAndEnd(room);
    const episode = await hostManages(host, room);
    assert.equal(episode.title, "Boss fight night");
    await pagePlaysAndSeeks(await ctx.newPage(), episode);
    await host.click("#episode-delete");
    assert.equal((await api(`${room.url}/api/episodes/${room.id}`, "GET")).status, 200, "one click does not delete");
    await host.click("#episode-delete");
    await episodeWhere(room.url, room.id, (e) => e.status === 404, "deleted");
  });
