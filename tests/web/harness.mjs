// What the browser tests share: real `booth` processes, Debian's Chromium driven by
// playwright-core, tone files made with sox, the room's HTTP API, and what a page plays measured
// with WebAudio. Importing it registers hooks that end every browser and booth process a test
// started when that test ends, so a test file keeps only its own steps and assertions.
// It must never hold a test's expectations (waitFor fails only at the deadline it is given):
// what a test proves stays in the test file.
//
// BOOTH_BIN names the booth binary (default target/debug/booth), BOOTH_CHROMIUM the browser
// (default /usr/bin/chromium); screenshots go to $BOOTH_SCREENSHOTS (default target/screenshots).

import { after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
export const BOOTH = process.env.BOOTH_BIN || join(root, "target/debug/booth");
export const SHOTS = process.env.BOOTH_SCREENSHOTS || join(root, "target/screenshots");
mkdirSync(SHOTS, { recursive: true });
/** This test file's scratch directory (node --test runs each file in its own process). */
export const work = mkdtempSync(join(tmpdir(), "booth-web-"));

const procs = [];
const contexts = [];

// Each test's browsers and booth processes end with it: left running (playing, analysing,
// hosting), they would load the 2-core machine under the tests that come after.
export async function stopAll() {
  while (contexts.length) await contexts.pop().close().catch(() => {});
  while (procs.length) procs.pop().kill("SIGKILL");
}
afterEach(stopAll);
after(stopAll);

/**
 * Starts booth with `args`; resolves `{ proc, [prefix]: rest of the line }` for the first stdout
 * line starting with each of `prefixes` (one prefix or a list). Fails if booth exits first, or
 * after 20 s, with booth's stderr in the message.
 */
export function booth(args, prefixes) {
  const wanted = Array.isArray(prefixes) ? prefixes : [prefixes];
  const p = spawn(BOOTH, args, { stdio: ["ignore", "pipe", "pipe"] });
  procs.push(p);
  let stderr = "";
  p.stderr.on("data", (d) => { stderr += d; });
  const found = {};
  const all = () => wanted.every((x) => x in found);
  return new Promise((resolveAll, reject) => {
    const timer = setTimeout(() => reject(new Error(`booth ${args[0]}: no ${wanted.map((x) => `'${x}'`)} within 20 s\n${stderr}`)), 20000);
    createInterface({ input: p.stdout }).on("line", (line) => {
      for (const pre of wanted) if (line.startsWith(pre) && !(pre in found)) found[pre] = line.slice(pre.length).trim();
      if (all()) { clearTimeout(timer); resolveAll({ proc: p, ...found }); }
    });
    p.on("exit", (code) => {
      if (!all()) { clearTimeout(timer); reject(new Error(`booth ${args[0]} exited ${code}\n${stderr}`)); }
    });
  });
}

/** A room server on free ports keeping its data in `data`: its base URL. */
export async function serve(data) {
  const server = await booth(["serve", "--bind", "127.0.0.1:0", "--udp-port", "0", "--data", data], ["booth: serving rooms on "]);
  return server["booth: serving rooms on "];
}

/** A sine of `freq` Hz at half scale, 48 kHz 16-bit, in `work`; with `bursts`, 1.5 s of tone
 *  then 2.5 s of silence, over and over. Returns its path. */
export function tone(name, seconds, freq, channels, bursts = false) {
  const path = join(work, name);
  const base = ["-n", "-r", "48000", "-c", String(channels), "-b", "16", path];
  const synth = bursts
    ? ["synth", "1.5", "sine", String(freq), "vol", "0.5", "pad", "0", "2.5", "repeat", String(Math.ceil(seconds / 4))]
    : ["synth", String(seconds), "sine", String(freq), "vol", "0.5"];
  execFileSync("sox", [...base, ...synth]);
  return path;
}

/** `seconds` of digital silence, 48 kHz 16-bit mono, in `work`. Returns its path. */
export function silence(name, seconds) {
  const path = join(work, name);
  execFileSync("sox", ["-n", "-r", "48000", "-c", "1", "-b", "16", path, "trim", "0", String(seconds)]);
  return path;
}

const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];

const cspViolations = [];

/** What the server's Content-Security-Policy refused on any page since the last call (each
 *  `directive: blocked URL`), and forgets them. */
export function takeCspViolations() {
  return cspViolations.splice(0);
}

/** A fresh headless Chromium profile with `viewport`; closed when the test ends. Its pages
 *  report what the Content-Security-Policy refuses (see `takeCspViolations`). */
export async function browser(viewport, extraArgs = []) {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "booth-chrome-")), {
    executablePath: process.env.BOOTH_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...FLAGS, ...extraArgs],
    viewport,
  });
  await ctx.exposeBinding("__cspViolation", (_source, what) => { cspViolations.push(what); });
  await ctx.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolation(`${e.effectiveDirective}: ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  contexts.push(ctx);
  return ctx;
}

/** Polls `fn` every 250 ms until it returns `{ ok: true, ... }`; fails after `seconds` with
 *  the last answer. */
export async function waitFor(what, fn, seconds = 10) {
  const end = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${what}: ${JSON.stringify(last)}`);
}

/** Who the room says `page` is (the `you` of its first `welcome`): call before the page loads. */
export function welcomedAs(page) {
  return new Promise((resolveYou) => {
    page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
      let msg;
      try { msg = JSON.parse(payload); } catch { return; }
      if (msg.type === "welcome") resolveYou(msg.you);
    }));
  });
}

/** A request to the room server's HTTP API (`token`: a bearer, if any): `{ status, body }`,
 *  the body parsed as JSON where it is JSON. */
export async function api(url, method, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  let parsed = text || null;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text, for the failure message */ }
  return { status: res.status, body: parsed };
}

/** A moderator's action on the room (with the host's or a co-host's token), as the API takes it. */
export function act(url, room, token, action) {
  return api(`${url}/api/rooms/${room}/actions`, "POST", action, token);
}

/**
 * Levels (dBFS per FFT bin, the loudest of three around each frequency) of what the page's audio
 * element plays, in one channel (0 left, 1 right) or both mixed (-1), whatever it plays from:
 * a WebRTC stream (heard from the stream), or a URL (HLS, MSE, MP3) through
 * `createMediaElementSource`, which can be made only once per element. Before the element has
 * anything to play, every level is -999.
 */
export async function levels(page, freqs, channel = -1) {
  return page.evaluate(async ([freqs, channel]) => {
    const audio = document.getElementById("audio");
    if (!audio.srcObject && !audio.src) return freqs.map(() => -999);
    // The page starts a new session (a new stream) when it goes on stage or reconnects: the
    // analysers follow what the page plays now.
    const source = audio.srcObject || audio;
    if (!window.__an || window.__anSource !== source) {
      if (window.__anCtx) window.__anCtx.close();
      const ctx = new AudioContext();
      window.__anCtx = ctx;
      window.__anSource = source;
      await ctx.resume();
      let src;
      if (audio.srcObject) {
        src = ctx.createMediaStreamSource(audio.srcObject);
      } else {
        // Taken by WebAudio, the element plays only through the graph: keep it audible.
        src = ctx.createMediaElementSource(audio);
        src.connect(ctx.destination);
      }
      const make = () => {
        const an = ctx.createAnalyser();
        an.fftSize = 8192;
        an.smoothingTimeConstant = 0;
        return an;
      };
      const split = ctx.createChannelSplitter(2);
      window.__an = { mix: make(), 0: make(), 1: make() };
      src.connect(window.__an.mix);
      src.connect(split);
      split.connect(window.__an[0], 0);
      split.connect(window.__an[1], 1);
      window.__rate = ctx.sampleRate;
    }
    await new Promise((r) => setTimeout(r, 400));
    const an = window.__an[channel < 0 ? "mix" : channel];
    const data = new Float32Array(an.frequencyBinCount);
    an.getFloatFrequencyData(data);
    const bin = (f) => Math.round(f / (window.__rate / an.fftSize));
    return freqs.map((f) => Math.max(data[bin(f) - 1], data[bin(f)], data[bin(f) + 1]));
  }, [freqs, channel]);
}
