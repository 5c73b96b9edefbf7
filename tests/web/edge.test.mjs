// The room page as a streamer shows it: the token of a host link or an invitation leaves the
// address bar as soon as the page has read it, the page still joins with it (and again after a
// reload), and the server's Content-Security-Policy refuses nothing the page does.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { api, browser, serve, takeCspViolations, welcomedAs, work } from "./harness.mjs";

test("the host's token leaves the address bar at once and the page still joins as host", async () => {
  const url = await serve(join(work, "data-edge1"));
  const created = await api(`${url}/api/rooms`, "POST", { title: "Edge", game: "Tests" });
  assert.equal(created.status, 201);
  const { host_link: hostLink, host_token: hostToken } = created.body;
  assert.ok(hostLink.includes("#token="), hostLink);

  const ctx = await browser({ width: 1280, height: 800 });
  const page = await ctx.newPage();
  const welcomed = welcomedAs(page);
  await page.goto(hostLink);
  const href = await page.evaluate(() => location.href);
  assert.ok(!href.includes(hostToken) && !href.includes("#"), `address bar: ${href}`);
  const you = await welcomed;
  assert.equal(you.role, "host");
  await page.getByRole("heading", { name: "Moderation" }).waitFor();

  // A reload (no token in the address any more) joins as the host again.
  const again = welcomedAs(page);
  await page.reload();
  assert.equal((await again).role, "host");
  assert.ok(!(await page.evaluate(() => location.href)).includes(hostToken));

  // An invitation link: also gone from the address bar before anyone answers it.
  const invite = await api(`${url}/api/rooms/${created.body.id}/invites`, "POST", { role: "speaker" }, hostToken);
  assert.equal(invite.status, 201);
  const guestCtx = await browser({ width: 390, height: 844 });
  const guest = await guestCtx.newPage();
  const guestWelcomed = welcomedAs(guest);
  await guest.goto(invite.body.link);
  const guestHref = await guest.evaluate(() => location.href);
  assert.ok(!guestHref.includes(invite.body.token) && !guestHref.includes("#"), `address bar: ${guestHref}`);
  assert.equal((await guestWelcomed).role, "speaker");

  assert.deepEqual(takeCspViolations(), []);
});
