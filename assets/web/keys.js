// Moving through the page without a mouse or a touch screen: TV remotes and game pads send arrow
// keys (or a d-pad, read here through the Gamepad API), so the arrows move the focus to the
// nearest control in their direction, and a game pad's A button clicks the focused one. Tab,
// Enter and Space stay the browser's own. It must never take an arrow key that a control needs
// (a caret in a text field, the volume slider's left and right), and never act on its own.
// The choice of the next control (`nearest`) is pure and works on plain rectangles.

const FOCUSABLE = "button, a[href], input, select, textarea, summary, [tabindex]:not([tabindex='-1'])";

const DIRECTIONS = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" };

/**
 * The index in `rects` of the nearest rectangle in `direction` ("up" | "down" | "left" |
 * "right") from `from` (rectangles as `{left, top, width, height}`), or -1 when none lies that
 * way. Distance along the direction counts once, distance across it twice, so the focus keeps
 * to its row or column when it can. Pure.
 */
export function nearest(from, rects, direction) {
  const cx = from.left + from.width / 2;
  const cy = from.top + from.height / 2;
  let best = -1;
  let bestScore = Infinity;
  rects.forEach((r, i) => {
    const dx = r.left + r.width / 2 - cx;
    const dy = r.top + r.height / 2 - cy;
    const along = { up: -dy, down: dy, left: -dx, right: dx }[direction];
    const across = direction === "up" || direction === "down" ? Math.abs(dx) : Math.abs(dy);
    // Only what lies beyond the control's edge in that direction, not a neighbour beside it.
    const edge = direction === "up" || direction === "down" ? from.height / 2 : from.width / 2;
    if (along <= edge / 2) return;
    const score = along + 2 * across;
    if (score < bestScore) {
      bestScore = score;
      best = i;
    }
  });
  return best;
}

function visibleControls() {
  return [...document.querySelectorAll(FOCUSABLE)].filter(
    (el) => !el.disabled && el.getClientRects().length > 0 && !el.closest("[inert]"),
  );
}

/** Whether the focused control uses `key` itself. */
function ownsKey(el, key) {
  if (!el || !el.matches) return false;
  if (el.matches("textarea, select")) return true;
  // A slider's value and a text field's caret move left and right; up and down move on.
  if (el.matches("input")) return key === "ArrowLeft" || key === "ArrowRight";
  return false;
}

/** Moves the focus one control in `direction`; with nothing focused, to `home()`. */
function move(direction, home) {
  const current = document.activeElement;
  const controls = visibleControls();
  if (!current || current === document.body || !controls.includes(current)) {
    const first = home() || controls[0];
    if (first) first.focus();
    return true;
  }
  const others = controls.filter((el) => el !== current);
  const i = nearest(current.getBoundingClientRect(), others.map((el) => el.getBoundingClientRect()), direction);
  if (i < 0) return false;
  others[i].focus();
  others[i].scrollIntoView({ block: "nearest", inline: "nearest" });
  return true;
}

// Standard-mapping game pad buttons (https://w3c.github.io/gamepad/#remapping).
const PAD_A = 0;
const PAD = { 12: "up", 13: "down", 14: "left", 15: "right" };
const STICK = 0.6;

function padPressed(pad) {
  const pressed = new Set();
  pad.buttons.forEach((b, i) => { if (b.pressed) pressed.add(i); });
  const [x = 0, y = 0] = pad.axes;
  if (y < -STICK) pressed.add(12);
  if (y > STICK) pressed.add(13);
  if (x < -STICK) pressed.add(14);
  if (x > STICK) pressed.add(15);
  return pressed;
}

function followGamepads(home) {
  let before = new Set();
  let running = false;
  const frame = () => {
    const pads = [...(navigator.getGamepads ? navigator.getGamepads() : [])].filter(Boolean);
    if (!pads.length) {
      running = false;
      return;
    }
    const now = new Set();
    for (const pad of pads) for (const b of padPressed(pad)) now.add(b);
    for (const b of now) {
      if (before.has(b)) continue;
      if (PAD[b]) move(PAD[b], home);
      if (b === PAD_A && document.activeElement && document.activeElement !== document.body) document.activeElement.click();
    }
    before = now;
    requestAnimationFrame(frame);
  };
  window.addEventListener("gamepadconnected", () => {
    if (running) return;
    running = true;
    requestAnimationFrame(frame);
  });
}

/** Arrow keys and game pads move the focus; `home()` is the control to start from (Listen). */
export function navigate(home) {
  document.addEventListener("keydown", (e) => {
    const direction = DIRECTIONS[e.key];
    if (!direction || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || e.defaultPrevented) return;
    if (ownsKey(document.activeElement, e.key)) return;
    if (move(direction, home)) e.preventDefault();
  });
  followGamepads(home);
}
