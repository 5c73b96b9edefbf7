// The page's fallback playback without a browser: the HLS playlist reading of assets/web/hls.js
// (RFC 8216 media playlists as the room server writes them, and a few it doesn't), the choice of
// how to play over HTTP in assets/web/stream.js, and the focus movement of assets/web/keys.js.
// Run alone with  node --test tests/web/hls.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { catchUpTime, parsePlaylist, pollDelayMs, segmentsAfter, startSequence } from "../../assets/web/hls.js";
import { httpPlayback, playbackText, streamUrls, NO_WEBRTC, WEBRTC_FAILED } from "../../assets/web/stream.js";
import { nearest } from "../../assets/web/keys.js";

/** A live playlist of `count` 2 s segments starting at `first`, as the room server writes it. */
function live(first, count, ended = false) {
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", `#EXT-X-MEDIA-SEQUENCE:${first}`];
  for (let n = first; n < first + count; n++) lines.push("#EXTINF:2.000,", `${n}.mp3`);
  if (ended) lines.push("#EXT-X-ENDLIST");
  return lines.join("\n") + "\n";
}

test("a live playlist gives its segments numbered from the media sequence", () => {
  const p = parsePlaylist(live(40, 3));
  assert.equal(p.targetDuration, 2);
  assert.equal(p.mediaSequence, 40);
  assert.equal(p.ended, false);
  assert.deepEqual(p.segments, [
    { seq: 40, uri: "40.mp3", duration: 2 },
    { seq: 41, uri: "41.mp3", duration: 2 },
    { seq: 42, uri: "42.mp3", duration: 2 },
  ]);
});

test("the end of the room shows as ENDLIST; CRLF, comments and unknown tags are skipped", () => {
  const text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:3\r\n# a comment\r\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T18:00:00Z\r\n"
    + "#EXTINF:2.5,title\r\nseg/a.mp3\r\n#EXT-X-ENDLIST\r\n";
  const p = parsePlaylist(text);
  assert.equal(p.ended, true);
  assert.equal(p.mediaSequence, 0, "RFC 8216: no MEDIA-SEQUENCE means 0");
  assert.deepEqual(p.segments, [{ seq: 0, uri: "seg/a.mp3", duration: 2.5 }]);
});

test("what is not a playlist is refused, and bad numbers fall back to defaults", () => {
  assert.equal(parsePlaylist("<html>502 Bad Gateway</html>"), null);
  assert.equal(parsePlaylist(""), null);
  assert.equal(parsePlaylist(undefined), null);
  const p = parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:x\n#EXT-X-MEDIA-SEQUENCE:-4\n#EXTINF:nope,\n1.mp3\n");
  assert.equal(p.targetDuration, 0);
  assert.equal(p.mediaSequence, 0);
  assert.deepEqual(p.segments, [{ seq: 0, uri: "1.mp3", duration: 0 }]);
});

test("a player starts at the third segment from the live edge", () => {
  assert.equal(startSequence(parsePlaylist(live(10, 6))), 13);
  assert.equal(startSequence(parsePlaylist(live(10, 2))), 10, "fewer than three: from the first");
  assert.equal(startSequence(parsePlaylist(live(10, 6, true))), 10, "an ended room plays whole");
  assert.equal(startSequence(parsePlaylist(live(0, 0))), null);
  assert.deepEqual(segmentsAfter(parsePlaylist(live(10, 6)), null).map((s) => s.seq), [13, 14, 15]);
});

test("each poll brings the segments not had yet, in order, even after falling behind the window", () => {
  assert.deepEqual(segmentsAfter(parsePlaylist(live(10, 6)), 14).map((s) => s.uri), ["15.mp3"]);
  assert.deepEqual(segmentsAfter(parsePlaylist(live(10, 6)), 15), []);
  // A failed fetch of 12 left `last` at 11: the next poll asks for 12 again.
  assert.deepEqual(segmentsAfter(parsePlaylist(live(10, 6)), 11).map((s) => s.seq), [12, 13, 14, 15]);
  // The window moved past 5 while the player was away: it goes on from the oldest listed.
  assert.deepEqual(segmentsAfter(parsePlaylist(live(20, 3)), 5).map((s) => s.seq), [20, 21, 22]);
});

test("the playlist is polled every target duration, sooner when nothing came", () => {
  const p = parsePlaylist(live(0, 3));
  assert.equal(pollDelayMs(p, true), 2000);
  assert.equal(pollDelayMs(p, false), 1000);
  assert.equal(pollDelayMs(null, true), 2000, "no playlist yet: the server's usual 2 s");
  assert.equal(pollDelayMs(parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:0.1\n"), false), 500);
});

test("a player that fell far behind the room jumps back to where a new one would start", () => {
  assert.equal(catchUpTime(0, 6, 2), null, "just started: three segments ahead");
  assert.equal(catchUpTime(100, 110, 2), null, "10 s behind its newest audio: plays on");
  assert.equal(catchUpTime(100, 112.5, 2), 106.5, "12.5 s behind: back to 6 s from the edge");
  assert.equal(catchUpTime(100, 112.5, 0), 106.5, "no target duration: the usual 2 s");
});

test("HTTP playback: native HLS first, then HLS over MSE, and MP3 always last", () => {
  assert.deepEqual(httpPlayback({ nativeHls: true, mseMp3: true }), ["native_hls", "mse_hls", "mp3"]);
  assert.deepEqual(httpPlayback({ nativeHls: false, mseMp3: true }), ["mse_hls", "mp3"]);
  assert.deepEqual(httpPlayback({ nativeHls: false, mseMp3: false }), ["mp3"]);
  assert.equal(playbackText("mse_hls", NO_WEBRTC), "Playing over HLS: this browser has no WebRTC");
  assert.equal(playbackText("mp3", NO_WEBRTC), "Playing over the MP3 stream: this browser has no WebRTC");
  assert.equal(playbackText("native_hls", WEBRTC_FAILED), "WebRTC could not connect: playing the HTTP stream, a few seconds behind");
  assert.deepEqual(streamUrls("r%20x", "http://h:1"), {
    m3u: "http://h:1/live/r%20x.m3u", mp3: "http://h:1/live/r%20x.mp3",
    ogg: "http://h:1/live/r%20x.ogg", hls: "http://h:1/hls/r%20x/index.m3u8",
  });
});

test("arrow keys move the focus to the nearest control that way, keeping to the row", () => {
  const box = (left, top) => ({ left, top, width: 100, height: 48 });
  const from = box(0, 100);
  const others = [box(120, 100), box(240, 100), box(0, 200), box(120, 200), box(0, 0)];
  assert.equal(nearest(from, others, "right"), 0);
  assert.equal(nearest(from, others, "down"), 2);
  assert.equal(nearest(from, others, "up"), 4);
  assert.equal(nearest(from, others, "left"), -1, "nothing to the left");
  // Down goes to the control under it, not to one off to the side.
  assert.equal(nearest(box(120, 0), [box(0, 60), box(130, 60)], "down"), 1);
});
