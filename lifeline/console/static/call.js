// The call page of a call still on the line follows that call's feed and updates itself in place.
// The server stays the one that draws the page: on news, the script fetches a fresh copy and swaps
// in only the parts (data-part) that changed, and appends only the transcript's new lines. There
// is no reload, so the reader's scroll position, focus and screen-reader place survive the news.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const L = window.Lifeline;
  const boot = L.boot();
  // Back from Pause or Resume (the form's redirect names #listening): the focus goes to the button
  // now in its place, not to the top of the page. After the load: the browser's own scroll to the
  // fragment would take it back.
  if (location.hash === "#listening") {
    window.addEventListener("load", () => {
      const button = document.getElementById("resume") || document.getElementById("pause");
      if (button) button.focus();
    });
  }
  if (!boot || !boot.active) return;
  let feed = null;
  // keepPlace() below holds the reader's place itself; the browser's own scroll anchoring would
  // add its correction to ours.
  document.documentElement.style.overflowAnchor = "none";

  // Where a node sits under root, as child indexes, to find its twin in a fresh copy of root.
  const pathTo = (root, node) => {
    const path = [];
    for (; node !== root; node = node.parentElement) path.unshift([...node.parentElement.children].indexOf(node));
    return path;
  };
  const follow = (root, path) => path.reduce((node, i) => node && node.children[i], root);

  // Replaces a part, handing the focus (a button in it, say) to the same control in the new copy.
  const swap = (old, fresh) => {
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    const path = focused && pathTo(old, focused);
    old.replaceWith(fresh);
    if (!focused) return;
    const twin = (focused.id && document.getElementById(focused.id)) || follow(fresh, path);
    if (twin && twin.tagName === focused.tagName) twin.focus({preventScroll: true});
  };

  // Lines are never redrawn once said: those the page has not shown yet are added, at the end, and
  // a line shown before a decision kept it as evidence only gains that mark (said once, politely).
  const addNew = (list, fresh) => {
    const shown = new Map([...list.children].map((li) => [li.dataset.key, li]));
    for (const li of [...fresh.children]) {
      const twin = shown.get(li.dataset.key);
      if (!twin) { list.append(li); continue; }
      const mark = li.querySelector(".evidence-mark");
      if (mark && !twin.querySelector(".evidence-mark")) twin.append(mark);
    }
  };

  const merge = (page) => {
    const pill = (root) => (root.querySelector('[data-part="status"]') || {}).textContent;
    const now = pill(page);
    if (now && now !== pill(document)) document.getElementById("call-news").textContent = "Now: " + now;
    for (const fresh of page.querySelectorAll("[data-part]")) {
      const old = document.querySelector(`[data-part="${fresh.dataset.part}"]`);
      if (!old) continue;
      L.localize(fresh);  // as the page's own times were, or every part with a time would differ
      if ("keyed" in old.dataset) addNew(old, fresh);
      else if (!old.isEqualNode(fresh)) swap(old, fresh);
    }
  };

  // The first part still showing at the top of the window stays where it was on screen, however
  // much the parts above it grew or shrank.
  const keepPlace = (change) => {
    const top = [...document.querySelectorAll("[data-part]")].find((p) => p.getBoundingClientRect().bottom > 0);
    const before = top && top.getBoundingClientRect().top;
    change();
    const after = top && document.querySelector(`[data-part="${top.dataset.part}"]`);
    if (after) window.scrollBy(0, after.getBoundingClientRect().top - before);
  };

  let over = false;   // the call has ended (its summary may still come)
  let stale = false;  // the last fetch failed, and the page says so
  const following = () => over ? L.feedState("ended", "call ended") : L.feedState("live", "live");

  // One fetch at a time; news that comes meanwhile is fetched once more after it.
  let busy = false, again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      // Bounded: a fetch stuck behind the browser's connection limit would leave the page looking
      // live while it is not.
      const response = await fetch(window.location.pathname, {headers: {Accept: "text/html"}, cache: "no-store",
                                                              signal: AbortSignal.timeout(10000)});
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      // Signed out, say: the answer is the sign-in form, with none of this page's parts.
      if (!response.ok || !page.querySelector("[data-part]")) throw new Error("no call page");
      keepPlace(() => merge(page));
      if (stale) { stale = false; following(); }
    } catch {
      stale = true;
      L.feedState("closed", "could not update: reload the page");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };

  let leaving = false;
  let soon = null;
  const news = () => {
    if (leaving) return;
    // A burst of events (a message and its decision) becomes one fetch.
    if (soon === null) soon = setTimeout(() => { soon = null; refresh(); }, 100);
  };
  // A form sent from this page (pause, resume) loads the fresh page itself; nothing needs to follow.
  document.addEventListener("submit", () => {
    leaving = true;
    feed.stop();
  });
  // The feed is shared with the browser's other console tabs (feed.js); a hidden tab stops
  // following, and goes on from the last event it had when it is seen again.
  feed = L.follow({
    after: boot.after,
    call: boot.call,
    kinds: ["status", "message", "decision", "transfer", "listening", "call.ended", "summary.ready"],
    onEvent: (event) => {
      news();
      if (event.type === "call.ended") { over = true; following(); }
      // The summary is the last news a call has: the page stops following then.
      if (event.type === "summary.ready") feed.stop();
    },
    onState: (state) => L.showFeed(state, following),
  });
});
