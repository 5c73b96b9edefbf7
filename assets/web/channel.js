// The room channel: the page's one WebSocket to its room (src/server/protocol.md), reopened with
// a growing backoff whenever it drops, with an outbox for what the person does meanwhile.
// No DOM and no room state here: messages go out to `onMessage`, words for the person to
// `onNotice`.

// What the page does while its room channel is down (a network blip, a server restart) is not
// lost: it waits in the outbox and goes out once the room has welcomed the page again. An action
// older than OUTBOX_MS by then is dropped, with a notice, rather than acted on long after the click.
export const OUTBOX_MS = 15000;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10000;

export class RoomChannel {
  #url;
  #events;
  #ws = null;
  #retryMs = FIRST_RETRY_MS;
  #welcomed = false;
  #closed = false;
  #outbox = [];

  /**
   * @param {string} url the room's `/ws` URL
   * @param {object} events `hello()`: the hello to send (asked at every connect, since the token
   *   changes once welcomed); `onMessage(msg)`: each parsed message; `onNotice(text)`;
   *   `onRemoved()`: the server closed the channel because the person was removed.
   */
  constructor(url, events) {
    this.#url = url;
    this.#events = events;
  }

  open() {
    if (this.#closed) return;
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => {
      this.#retryMs = FIRST_RETRY_MS;
      ws.send(JSON.stringify(this.#events.hello()));
    };
    ws.onmessage = (e) => this.#receive(e.data);
    ws.onclose = (e) => this.#dropped(e.reason);
  }

  /** Sends an action (`{type, ...}`) now, or once the room has welcomed the page again. */
  send(action) {
    const msg = JSON.stringify({ v: 1, ...action });
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.#welcomed) {
      ws.send(msg);
      return;
    }
    this.#outbox.push({ at: Date.now(), msg });
    this.#events.onNotice("Reconnecting to the room… what you just did goes out when it's back.");
  }

  /** Closes the channel for good: no reconnecting. */
  close() {
    this.#closed = true;
    const ws = this.#ws;
    if (!ws) return;
    ws.onclose = null;
    ws.close();
  }

  #receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    this.#events.onMessage(msg);
    if (msg && msg.type === "welcome" && !this.#closed) {
      this.#welcomed = true;
      this.#flush();
    }
  }

  #flush() {
    const now = Date.now();
    const queued = this.#outbox.splice(0);
    const fresh = queued.filter((q) => now - q.at <= OUTBOX_MS);
    for (const q of fresh) this.#ws.send(q.msg);
    if (fresh.length < queued.length) {
      this.#events.onNotice("The room couldn't be reached for a while: some of what you did didn't reach it. Please try again.");
    } else if (queued.length) this.#events.onNotice("");
  }

  #dropped(reason) {
    this.#welcomed = false;
    if (reason && /removed/.test(reason)) {
      this.#closed = true;
      this.#events.onRemoved();
      return;
    }
    if (this.#closed) return;
    setTimeout(() => this.open(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }
}
