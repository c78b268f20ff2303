// The call page of a call still on the line follows that call's feed and redraws on news.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const L = window.Lifeline;
  const boot = L.boot();
  if (!boot || !boot.active) return;
  const url = "/api/events?call=" + encodeURIComponent(boot.call) + "&after=" + encodeURIComponent(boot.after);
  const source = new EventSource(url);
  let reload = null;
  let leaving = false;
  const news = () => {
    if (leaving) return;
    L.feedState("news", "new activity…");
    // A burst of events (a message and its decision) becomes one reload.
    if (reload === null) reload = setTimeout(() => { source.close(); window.location.reload(); }, 700);
  };
  // A form sent from this page (pause, resume) loads the fresh page itself; a reload due in the
  // meantime would cancel that navigation and lose the click.
  document.addEventListener("submit", () => {
    leaving = true;
    if (reload !== null) clearTimeout(reload);
    source.close();
  });
  for (const kind of ["message", "decision", "transfer", "listening", "call.ended", "summary.ready"]) {
    source.addEventListener(kind, news);
  }
  source.onopen = () => L.feedState("live", "live");
  source.onerror = () => {
    // The browser retries by itself unless the server refused outright (signed out, say).
    if (source.readyState === EventSource.CLOSED) L.feedState("closed", "disconnected: reload the page");
    else L.feedState("connecting", "reconnecting…");
  };
});
