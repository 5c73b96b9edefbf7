// The room page for everyone: a browser without WebRTC plays the room over HTTP (HLS, natively
// or through the page's own MSE player), "Listen in your player" offers the HTTP streams, and a
// keyboard alone (as TV remotes and game pads drive a page) reaches Listen and starts it.
// Debian's Chromium driven by playwright-core, against real `booth serve` and `booth host`.
//   BOOTH_BIN=$CARGO_TARGET_DIR/debug/booth node --test tests/web/fallback.test.mjs

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { act, booth, browser, levels, serve, SHOTS, takeCspViolations, tone, waitFor, welcomedAs, work } from "./harness.mjs";

// The server's Content-Security-Policy refuses nothing these pages do.
afterEach(() => assert.deepEqual(takeCspViolations(), []));

/** A room on a fresh server whose host plays a 440 Hz tone for `seconds`: its listen link. */
async function toneRoom(name, seconds = 90) {
  const game = tone(`${name}.wav`, seconds, 440, 2);
  const url = await serve(join(work, name));
  const host = await booth(["host", "--headless", "--server", url, "--title", "Everyone listens", "--game-file", game,
    "--mic-file", game, "--seconds", String(seconds)], ["listen: ", "room:   ", "token:  "]);
  return { url, link: host["listen: "], room: host["room:   "], token: host["token:  "] };
}

/** Makes `page` a browser without WebRTC; `nativeHls: false` also takes away native HLS, so
 *  the page's own MSE player has to play; `mse: false` takes MP3 from Media Source Extensions. */
async function withoutWebRtc(page, { nativeHls, mse = true }) {
  await page.addInitScript(([nativeHls, mse]) => {
    delete window.RTCPeerConnection;
    delete window.webkitRTCPeerConnection;
    if (!nativeHls) {
      const canPlay = HTMLMediaElement.prototype.canPlayType;
      HTMLMediaElement.prototype.canPlayType = function (type) {
        return /mpegurl/i.test(type) ? "" : canPlay.call(this, type);
      };
    }
    if (!mse) MediaSource.isTypeSupported = () => false;
  }, [nativeHls, mse]);
}

// Chromium 148 says "maybe" to native HLS but its HLS demuxer refuses MP3 packed audio: the page
// then goes on with its own MSE player. The second page has no native HLS at all, so the MSE
// player is the first choice there (as in Firefox and most TV browsers).
test("a browser without WebRTC plays the room over HLS (native HLS where it works, else the page's MSE player) and hears 440 Hz", async () => {
  const { url, link, room, token } = await toneRoom("hls");
  const ctx = await browser({ width: 390, height: 844 });
  for (const nativeHls of [true, false]) {
    const page = await ctx.newPage();
    await withoutWebRtc(page, { nativeHls });
    const you = welcomedAs(page);
    await page.goto(link);
    await page.getByRole("heading", { name: "Everyone listens" }).waitFor();
    await page.getByRole("button", { name: "Listen" }).click();
    await page.getByText("Playing over HLS: this browser has no WebRTC").waitFor();
    const offered = nativeHls ? "native HLS offered" : "no native HLS";
    const t0 = Date.now();
    const heard = await waitFor(`440 Hz over HTTP (${offered})`, async () => {
      const [l440, l3k] = await levels(page, [440, 3000]);
      return { ok: l440 > -45 && l440 - l3k > 25, l440, l3k };
    }, 30);
    const src = await page.evaluate(() => document.getElementById("audio").src);
    assert.ok(src.startsWith("blob:") || src.endsWith(".m3u8"), `plays HLS, not the MP3 stream: ${src}`);
    if (!nativeHls) assert.match(src, /^blob:/, "without native HLS the page's MSE player plays");
    const how = src.startsWith("blob:") ? "the page's MSE player" : "native HLS";
    console.log(`# ${offered}: played by ${how}; 440 Hz at ${heard.l440.toFixed(1)} dBFS, 3 kHz at ${heard.l3k.toFixed(1)}, `
      + `heard ${Date.now() - t0} ms after the page said so`);
    // Room events keep coming over the WebSocket while the audio comes over HTTP.
    await page.locator(".member").first().waitFor();
    await page.getByRole("button", { name: "✋ Raise hand" }).click();
    await page.getByText("Hand raised").waitFor();
    // Invited to speak, the page says that speaking needs WebRTC instead of offering a stage it
    // could not send from.
    assert.equal((await act(url, room, token, { type: "invite", target: (await you).id })).status, 204);
    await page.getByRole("alertdialog").getByText("this browser has no WebRTC, which speaking needs").waitFor();
    assert.equal(await page.getByRole("button", { name: "Join the stage" }).isVisible(), false);
    await page.screenshot({ path: join(SHOTS, `no-webrtc-${nativeHls ? "native" : "mse"}-390x844.png`), fullPage: true });
    await page.close();
  }
});

test("a browser with neither WebRTC nor HLS plays the MP3 stream and hears 440 Hz", async () => {
  const { link } = await toneRoom("mp3", 60);
  const page = await (await browser({ width: 390, height: 844 })).newPage();
  await withoutWebRtc(page, { nativeHls: false, mse: false });
  await page.goto(link);
  await page.getByRole("button", { name: "Listen" }).click();
  await page.getByText("Playing over the MP3 stream: this browser has no WebRTC").waitFor();
  await waitFor("440 Hz from the MP3 stream", async () => {
    const [l440, l3k] = await levels(page, [440, 3000]);
    return { ok: l440 > -45 && l440 - l3k > 25, l440, l3k };
  }, 20);
  assert.match(await page.evaluate(() => document.getElementById("audio").src), /\/live\/[^/]+\.mp3$/);
});

test("a page whose WebRTC cannot connect plays the HTTP stream after a few seconds, and says so", async () => {
  const { link } = await toneRoom("blocked", 60);
  const page = await (await browser({ width: 390, height: 844 })).newPage();
  // A network that lets the page through but not its WebRTC: every WHEP offer fails.
  await page.route(/\/whep\//, (route) => route.abort("connectionrefused"));
  await page.goto(link);
  await page.getByRole("button", { name: "Listen" }).click();
  const t0 = Date.now();
  await page.getByText("WebRTC could not connect: playing the HTTP stream, a few seconds behind").waitFor({ timeout: 15000 });
  const gaveUp = Date.now() - t0;
  const heard = await waitFor("440 Hz over HTTP", async () => {
    const [l440, l3k] = await levels(page, [440, 3000]);
    return { ok: l440 > -45 && l440 - l3k > 25, l440, l3k };
  }, 30);
  console.log(`# WebRTC given up after ${gaveUp} ms; 440 Hz over HTTP at ${heard.l440.toFixed(1)} dBFS ${Date.now() - t0} ms after Listen`);
  await page.screenshot({ path: join(SHOTS, "webrtc-failed-390x844.png"), fullPage: true });
});

/** The first bytes of an endless stream (or the whole of a short answer), and its type. */
async function firstBytes(url) {
  const res = await fetch(url);
  const reader = res.body.getReader();
  const { value } = await reader.read();
  await reader.cancel();
  return { status: res.status, type: res.headers.get("content-type"), bytes: Buffer.from(value || []) };
}

test("'Listen in your player' offers the room's streams as links, and each answers", async () => {
  const { link, room } = await toneRoom("links", 60);
  const page = await (await browser({ width: 1280, height: 800 })).newPage();
  await page.goto(link);
  await page.getByText("Listen in your player").click();
  const links = {};
  for (const kind of ["m3u", "mp3", "ogg", "hls"]) {
    const a = page.locator(`#link-${kind}`);
    await a.waitFor({ state: "visible" });
    links[kind] = await a.getAttribute("href");
    assert.equal(await a.textContent(), links[kind], "the link shows its URL, to copy or type");
  }
  assert.ok(links.mp3.endsWith(`/live/${room}.mp3`), links.mp3);
  assert.ok(links.hls.endsWith(`/hls/${room}/index.m3u8`), links.hls);

  const m3u = await (await fetch(links.m3u)).text();
  assert.ok(m3u.includes(links.mp3), `the .m3u names the .mp3 stream: ${m3u}`);
  const mp3 = await firstBytes(links.mp3);
  assert.equal(mp3.status, 200);
  assert.match(mp3.type, /^audio\/mpeg/);
  const ogg = await firstBytes(links.ogg);
  assert.equal(ogg.status, 200);
  assert.match(ogg.type, /^audio\/ogg/);
  assert.equal(ogg.bytes.subarray(0, 4).toString("latin1"), "OggS");
  await waitFor("the HLS playlist", async () => {
    const res = await fetch(links.hls);
    const text = await res.text();
    return { ok: res.status === 200 && text.startsWith("#EXTM3U"), status: res.status, text: text.slice(0, 80) };
  }, 20);
  await page.screenshot({ path: join(SHOTS, "player-links-1280x800.png"), fullPage: true });
});

test("with a keyboard alone the focus starts on Listen, arrows move it and come back, and Enter listens", async () => {
  const { link } = await toneRoom("keys", 60);
  const page = await (await browser({ width: 1280, height: 800 })).newPage();
  await page.goto(link);
  await page.getByRole("heading", { name: "Everyone listens" }).waitFor();
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return { id: el.id, text: el.textContent.trim().slice(0, 30), outline: getComputedStyle(el).outlineStyle };
  });
  assert.equal((await focused()).id, "listen", "the page starts with the focus on Listen");

  // Tab goes on, Shift+Tab comes back: every control is in the tab order.
  await page.keyboard.press("Tab");
  assert.notEqual((await focused()).id, "listen");
  await page.keyboard.press("Shift+Tab");
  assert.equal((await focused()).id, "listen");

  // A TV remote's arrows: down leaves Listen, up comes back to it.
  await page.keyboard.press("ArrowDown");
  const below = await focused();
  assert.notEqual(below.id, "listen", "ArrowDown moved the focus");
  await page.keyboard.press("ArrowUp");
  const back = await focused();
  assert.equal(back.id, "listen", "ArrowUp came back to Listen");
  assert.equal(back.outline, "solid", "the focused control shows a focus ring");

  await page.keyboard.press("Enter");
  await page.getByText("Listening live").waitFor({ timeout: 15000 });
  await waitFor("440 Hz after Enter", async () => {
    const [l440] = await levels(page, [440]);
    return { ok: l440 > -45, l440 };
  }, 15);
  // The focus went to the control that took Listen's place, not into nowhere.
  assert.equal((await focused()).id, "volume");

  // "Listen in your player" opens from the keyboard too.
  for (let i = 0; i < 5 && (await focused()).text !== "Listen in your player"; i++) await page.keyboard.press("ArrowDown");
  assert.equal((await focused()).text, "Listen in your player");
  await page.keyboard.press("Enter");
  await page.locator("#link-mp3").waitFor({ state: "visible" });
  await page.screenshot({ path: join(SHOTS, "keyboard-1280x800.png"), fullPage: true });
});
