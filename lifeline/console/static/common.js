// Shared by the console's pages: local times, readable names, and DOM helpers that never parse HTML.
"use strict";
window.Lifeline = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const humanize = (name) => {
    const words = String(name).replace(/^_+|_+$/g, "").replace(/[_-]/g, " ").trim();
    return words ? words[0].toUpperCase() + words.slice(1) : String(name);
  };
  const readable = (names, kind, value) =>
    value === null || value === undefined ? "" : (names[kind] && names[kind][value]) || humanize(value);
  // Caller text only ever goes in through textContent.
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const svg = (tag, attrs) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  };
  const clock = (seconds) => {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
  };
  const localTime = (iso) => {
    const when = new Date(iso);
    return isNaN(when) ? iso : when.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"});
  };
  // Server-rendered <time datetime="…Z"> elements show the reader's local time; UTC stays in the tooltip.
  const localize = (root) => {
    for (const node of (root || document).querySelectorAll("time[datetime]")) {
      node.title = node.getAttribute("datetime");
      node.textContent = localTime(node.getAttribute("datetime"));
    }
  };
  const boot = () => {
    const node = document.getElementById("boot");
    return node ? JSON.parse(node.textContent) : null;
  };
  const feedState = (state, text) => {
    const node = document.getElementById("feed-state");
    if (node) { node.className = "feed " + state; node.textContent = text; }
    // Not following the feed: what the page shows may be out of date, so it stops looking live.
    document.body.classList.toggle("stale", state === "closed" || state === "connecting");
  };
  // The server refused the feed for good. Ask once why: a session signed out elsewhere (or past
  // its 8 hours) needs a sign-in, which a reload gives; anything else is a lost connection.
  const feedClosed = () => {
    const lost = () => feedState("closed", "disconnected: reload the page");
    fetch("/api/calls?limit=1", {credentials: "same-origin", cache: "no-store"}).then((answer) => {
      if (answer.status !== 401) { lost(); return; }
      feedState("closed", "signed out: ");
      const node = document.getElementById("feed-state");
      const again = el("a", null, "sign in again");
      again.href = location.pathname + location.search;
      if (node) node.append(again);
    }, lost);
  };
  // Run `start` now and whenever the page is seen again, `stop` whenever it is hidden.
  const whileSeen = (start, stop) => {
    let running = !document.hidden;
    if (running) start();
    document.addEventListener("visibilitychange", () => {
      if (document.hidden && running) { running = false; stop(); }
      else if (!document.hidden && !running) { running = true; start(); }
    });
  };
  document.addEventListener("DOMContentLoaded", () => localize(document));
  return {humanize, readable, el, svg, clock, localTime, localize, boot, feedState, feedClosed, whileSeen};
})();
