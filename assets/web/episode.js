// An episode's page: its chapters seek the player and play from there, and the chapter playing
// now is marked, so a listener sees where they are. No state beyond what the page shows.

const player = document.getElementById("player");
const chapters = [...document.querySelectorAll(".chapter[data-start]")];

for (const button of chapters) {
  button.addEventListener("click", () => {
    const start = Number(button.dataset.start);
    if (!player || !Number.isFinite(start)) return;
    player.currentTime = start;
    // A browser may refuse to play without a gesture it trusts; the seek still holds.
    player.play().catch(() => {});
  });
}

function markCurrent() {
  let current = null;
  for (const button of chapters) {
    if (Number(button.dataset.start) <= player.currentTime + 0.25) current = button;
  }
  for (const button of chapters) {
    if (button === current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

if (player) {
  player.addEventListener("timeupdate", markCurrent);
  player.addEventListener("seeked", markCurrent);
}
