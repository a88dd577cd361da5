// padlab panel: live stages of a start or stop (server-sent events), copy buttons, gentle refresh.
"use strict";

function follow(card) {
  const name = card.dataset.name;
  const stages = card.querySelector(".stages");
  const source = new EventSource("/w/" + encodeURIComponent(name) + "/events");
  source.addEventListener("stage", (event) => {
    const item = document.createElement("li");
    item.textContent = JSON.parse(event.data);
    stages.appendChild(item);
  });
  source.addEventListener("progress", (event) => {
    const p = JSON.parse(event.data) || {};
    const bar = card.querySelector("progress[data-role=progress]");
    const text = card.querySelector("[data-role=progress-text]");
    if (!bar) return;
    bar.hidden = false;
    if (p.total) { bar.max = p.total; bar.value = p.bytes || 0; } else { bar.removeAttribute("value"); }
    if (text) text.textContent = (p.bytes || 0) + (p.total ? " of " + p.total : "") + " bytes" + (p.note ? " (" + p.note + ")" : "");
  });
  source.addEventListener("done", (event) => {
    source.close();
    const working = card.querySelector("[data-role=working]");
    if (!working || !document.querySelector("[data-role=password]")) {
      window.location.reload();
      return;
    }
    // The job page: say how it ended in place, so a password shown once stays on screen.
    const error = (JSON.parse(event.data) || {}).error;
    const line = document.createElement("p");
    line.className = error ? "error" : "ok";
    line.setAttribute("role", error ? "alert" : "status");
    line.dataset.role = error ? "error" : "done";
    line.textContent = error || "Done.";
    working.replaceWith(line);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("article[data-live]").forEach(follow);
  if (document.querySelector("article[data-poll]")) {
    // Another padlab command (the CLI) is starting or stopping it: look again shortly.
    setTimeout(() => window.location.reload(), 5000);
  }
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch (err) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
});
