// Booth's web room client in a real browser (Debian's Chromium, driven by playwright-core)
// against real `booth serve` and `booth host` processes. Run by tests/run:
//   node --test tests/web/
// The processes, browsers, tones and level measurement come from harness.mjs (which also says
// which environment variables choose the binaries and where screenshots go).

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import {
  act, api, booth, browser, levels, serve, SHOTS, silence, takeCspViolations, tone, waitFor, welcomedAs, work,
} from "./harness.mjs";

// The server's Content-Security-Policy allows exactly what the room page uses: nothing a test
// does may be refused by it.
afterEach(() => assert.deepEqual(takeCspViolations(), []));

/** Follows `page`'s listening (WHEP) sessions: `.current` is the URL of the newest one. */
function whepSessions(page) {
  const sessions = { current: null };
  page.on("response", (res) => {
    const req = res.request();
    if (req.method() === "POST" && new URL(req.url()).pathname.startsWith("/whep/") && res.status() === 201) {
      sessions.current = res.headers().location;
    }
  });
  return sessions;
}

/** Keeps every WebSocket `page` opens in `window.__sockets`, so a test can cut the room channel. */
async function trackSockets(page) {
  await page.addInitScript(() => {
    window.__sockets = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
}

test("a listener hears the program, sees who speaks, and names stay text", async () => {
  // The game in stereo: 440 Hz on the left, 660 Hz on the right.
  const game = join(work, "game-stereo.wav");
  execFileSync("sox", ["-n", "-r", "48000", "-c", "2", "-b", "16", game, "synth", "60", "sine", "440", "sine", "660", "vol", "0.5"]);
  const mic = tone("mic.wav", 60, 1000, 1, true);
  const url = await serve(join(work, "data"));
  const host = await booth(["host", "--headless", "--server", url, "--title", "Elden Ring DLC — first look", "--game", "Elden Ring",
    "--game-file", game, "--mic-file", mic, "--no-noise-suppression", "--voice-gate", "0", "--seconds", "60"], ["listen: ", "host:   "]);
  const link = host["listen: "];

  const phone = await browser({ width: 390, height: 844 });
  const page = await phone.newPage();
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs += 1; d.dismiss(); });
  await page.goto(link);
  await page.getByRole("heading", { name: "Elden Ring DLC — first look" }).waitFor();
  await page.getByLabel("Your name").fill("<img src=x onerror=alert(1)>");
  await page.getByLabel("Your name").press("Enter");
  await page.getByRole("button", { name: "Listen" }).click();
  await waitFor("440 Hz in the page", async () => {
    const [l440, l3k] = await levels(page, [440, 3000]);
    return { ok: l440 > -45 && l440 - l3k > 25, l440, l3k };
  }, 15);
  // The game keeps its stereo: left is the left, right is the right.
  await waitFor("stereo", async () => {
    const [l440, l660] = await levels(page, [440, 660], 0);
    const [r440, r660] = await levels(page, [440, 660], 1);
    return { ok: l440 - l660 > 20 && r660 - r440 > 20, l440, l660, r440, r660 };
  }, 5);
  // The host's speaking indicator follows the host's voice (1.5 s bursts, 2.5 s pauses), not
  // the game under it: it lights, then goes out, then lights again.
  for (const want of [1, 0, 1]) {
    await waitFor(`the host speaking = ${want}`, async () => {
      const speaking = await page.locator(".member.speaking").count();
      return { ok: speaking === want, speaking };
    }, 6);
  }
  await page.screenshot({ path: join(SHOTS, "listener-390x844.png"), fullPage: true });

  // A hostile name shows as text in the moderators' audience list; no dialog opened.
  const desk = await browser({ width: 1280, height: 800 });
  const mod = await desk.newPage();
  mod.on("dialog", (d) => { dialogs += 1; d.dismiss(); });
  await mod.goto(host["host:   "]);
  await mod.getByRole("heading", { name: "Moderation" }).waitFor();
  await mod.getByText("<img src=x onerror=alert(1)>").waitFor();
  assert.equal(await mod.locator("img").count(), 0);
  assert.equal(dialogs, 0);
  await mod.screenshot({ path: join(SHOTS, "moderation-1280x800.png"), fullPage: true });

  const wide = await desk.newPage();
  await wide.goto(link);
  await wide.getByRole("button", { name: "Listen" }).click();
  await wide.getByText("Listening live").waitFor();
  await wide.screenshot({ path: join(SHOTS, "listener-1280x800.png"), fullPage: true });
});

test("a raised hand is heard by the room, not by itself; a co-host mutes and removes it", async () => {
  const game = tone("game2.wav", 90, 440, 2);
  const quiet = silence("silence.wav", 90);
  const voice = tone("voice700.wav", 90, 700, 1);
  const url = await serve(join(work, "data2"));
  const host = await booth(["host", "--headless", "--server", url, "--title", "Stage night", "--game-file", game,
    "--mic-file", quiet, "--seconds", "90"], ["listen: ", "room:   ", "token:  "]);
  const [link, room, hostToken] = [host["listen: "], host["room:   "], host["token:  "]];

  const listener = await (await browser({ width: 390, height: 844 })).newPage();
  await listener.goto(link);
  await listener.getByRole("button", { name: "Listen" }).click();
  await waitFor("the listener hears 440 Hz", async () => {
    const [l440] = await levels(listener, [440]);
    return { ok: l440 > -45, l440 };
  }, 15);

  const speakerCtx = await browser({ width: 390, height: 844 }, [
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-audio-capture=${voice}`,
  ]);
  const speaker = await speakerCtx.newPage();
  await speaker.addInitScript(() => localStorage.setItem("booth-name", "Guest Gamer"));
  const speakerYou = welcomedAs(speaker);
  await speaker.goto(link);
  await speaker.getByRole("button", { name: "Listen" }).click();
  await speaker.getByRole("button", { name: "✋ Raise hand" }).click();
  const speakerId = (await speakerYou).id;
  // The raised hand reaches the room over the page's WebSocket: until it has, there is no hand
  // to approve (409).
  await waitFor("the raised hand approved", async () => {
    const approved = await act(url, room, hostToken, { type: "approve", target: speakerId });
    return { ok: approved.status === 204, status: approved.status, body: approved.body };
  }, 10);
  await speaker.getByRole("button", { name: "🎙 Turn on mic" }).click();
  await waitFor("the listener hears the speaker's 700 Hz", async () => {
    const [l700, l3k] = await levels(listener, [700, 3000]);
    return { ok: l700 > -65 && l700 - l3k > 15, l700, l3k };
  }, 15);
  await waitFor("the speaker hears the room but not themself", async () => {
    const [l440, l700] = await levels(speaker, [440, 700]);
    return { ok: l440 > -45 && l440 - l700 > 25, l440, l700 };
  }, 15);
  await listener.screenshot({ path: join(SHOTS, "listener-with-speaker-390x844.png"), fullPage: true });

  // A co-host, from an invitation link, mutes and then removes the speaker.
  const inv = await api(`${url}/api/rooms/${room}/invites`, "POST", { role: "co_host" }, hostToken);
  assert.equal(inv.status, 201, JSON.stringify(inv));
  const cohost = await (await browser({ width: 1280, height: 800 })).newPage();
  cohost.on("dialog", (d) => d.accept());
  await cohost.goto(inv.body.link);
  await cohost.getByRole("button", { name: "Mute Guest Gamer" }).click();
  // The room applied the mute (every page shows it) before the listener's ears are asked.
  await cohost.locator(".member", { hasText: "Guest Gamer" }).getByText("🔇 muted").waitFor({ timeout: 10000 });
  await waitFor("700 Hz gone for the listener after the mute", async () => {
    const [l440, l700] = await levels(listener, [440, 700]);
    return { ok: l440 > -45 && l440 - l700 > 30, l440, l700 };
  }, 5);
  await cohost.screenshot({ path: join(SHOTS, "cohost-1280x800.png"), fullPage: true });
  await cohost.getByRole("button", { name: "Remove Guest Gamer" }).click();
  await speaker.getByRole("heading", { name: "You were removed from this room" }).waitFor();
  await speaker.reload();
  await speaker.getByRole("heading", { name: "You were removed from this room" }).waitFor();
  assert.equal(await speaker.getByRole("button", { name: "✋ Raise hand" }).isVisible(), false);
});

test("a listener whose connection is cut hears the room again within 5 s, without a reload", async () => {
  const game = tone("game3.wav", 60, 440, 2);
  const url = await serve(join(work, "data3"));
  const host = await booth(["host", "--headless", "--server", url, "--game-file", game, "--mic-file", game, "--seconds", "60"],
    ["listen: ", "room:   ", "token:  "]);
  const page = await (await browser({ width: 390, height: 844 })).newPage();
  const you = welcomedAs(page);
  const sessions = whepSessions(page);
  await trackSockets(page);
  await page.goto(host["listen: "]);
  await page.getByRole("button", { name: "Listen" }).click();
  await waitFor("440 Hz", async () => { const [l] = await levels(page, [440]); return { ok: l > -45, l }; }, 15);
  const session = sessions.current;
  const cut = await fetch(new URL(session, url), { method: "DELETE" });
  assert.equal(cut.status, 200);
  const t0 = Date.now();
  // The page notices and comes back by itself.
  await waitFor("a new session", async () => {
    const now = sessions.current;
    return { ok: now && now !== session, now };
  }, 5);
  await page.evaluate(() => { window.__an = null; });
  await waitFor("440 Hz again", async () => { const [l] = await levels(page, [440]); return { ok: l > -45, l }; }, 5);
  const took = Date.now() - t0;
  assert.ok(took < 5000, `audio came back after ${took} ms`);
  console.log(`# audio back ${took} ms after the session was cut`);

  // What the listener does while the room channel is down is not lost: it goes out once the
  // page is back in the room.
  const id = (await you).id;
  await page.evaluate(() => window.__sockets.at(-1).close());
  await page.getByRole("button", { name: "✋ Raise hand" }).click();
  await page.getByText("Reconnecting to the room").waitFor();
  await waitFor("the hand raised while the channel was down reaches the room", async () => {
    const approved = await act(url, host["room:   "], host["token:  "], { type: "approve", target: id });
    return { ok: approved.status === 204, status: approved.status, body: approved.body };
  }, 10);
  await page.getByText("Reconnecting to the room").waitFor({ state: "detached" });
});

test("an invitation is accepted from its prompt, REC shows, and ending the room reaches every page", async () => {
  const game = tone("game4.wav", 60, 440, 2);
  const url = await serve(join(work, "data4"));
  const host = await booth(["host", "--headless", "--server", url, "--title", "Invites", "--game-file", game,
    "--mic-file", game, "--seconds", "60"], ["listen: ", "host:   ", "room:   ", "token:  "]);
  const ctx = await browser({ width: 1280, height: 800 });
  const hostPage = await ctx.newPage();
  hostPage.on("dialog", (d) => d.accept());
  await hostPage.goto(host["host:   "]);
  await hostPage.getByRole("heading", { name: "Moderation" }).waitFor();
  const listenerCtx = await browser({ width: 390, height: 844 });
  const listener = await listenerCtx.newPage();
  await listener.addInitScript(() => localStorage.setItem("booth-name", "Nia"));
  await listener.goto(host["listen: "]);
  await hostPage.getByRole("button", { name: "Invite Nia to speak" }).click();
  await listener.getByRole("alertdialog").getByText("You're invited to speak.").waitFor();
  // Keyboard users reach the prompt's button and take it with Enter.
  await listener.getByRole("button", { name: "Join the stage" }).focus();
  await listener.keyboard.press("Enter");
  await listener.locator(".member", { hasText: "Nia" }).getByText("Speaker").waitFor();
  await hostPage.locator(".member", { hasText: "Nia" }).waitFor();

  const rec = await act(url, host["room:   "], host["token:  "], { type: "start_recording" });
  assert.equal(rec.status, 204);
  await listener.locator("#rec").waitFor({ state: "visible" });

  await hostPage.getByRole("button", { name: "End the room" }).click();
  await listener.getByRole("heading", { name: "This room has ended" }).waitFor();
  await hostPage.getByRole("heading", { name: "This room has ended" }).waitFor();
  await listener.screenshot({ path: join(SHOTS, "ended-390x844.png") });
});
