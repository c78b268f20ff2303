// The live view: starts from the server's snapshot, then follows the feed (Server-Sent Events).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const L = window.Lifeline;
  const boot = L.boot();
  const names = boot.names;
  const bar = boot.intent_bar;  // an intent is named from this confidence up (the intent rules' lowest)
  const name = (kind, value) => L.readable(names, kind, value);
  const SPARK = {w: 120, h: 28, n: 24};
  const calls = new Map();
  const gone = new Set();  // calls that ended while the page was open (their stragglers are ignored)
  const GONE_MAX = 5000;
  const ended = [];

  const newCall = (id, from, to, startedAt, status) => {
    const call = {id, from, to, started: Date.parse(startedAt) || Date.now(), status: status || "answering",
                  listening: null, scores: [], reading: null, last: null, decision: null, transfer: null, failed: 0};
    calls.set(id, call);
    return call;
  };

  const apply = (ev) => {
    const id = ev.call_control_id, d = ev.data || {};
    if (ev.type === "call.ended") {
      const call = calls.get(id);
      calls.delete(id);
      gone.add(id);
      // A page left open for days forgets the oldest ended calls (a Set iterates in insertion order).
      if (gone.size > GONE_MAX) gone.delete(gone.values().next().value);
      if (call) ended.unshift({call, outcome: d.outcome, at: ev.at});
      ended.splice(8);
      return;
    }
    if (gone.has(id)) return;  // a straggler of a call that has left the list
    let call = calls.get(id);
    if (!call) {
      // Only a call's start (or the snapshot) adds a row: a late line of a call that ended before
      // this page opened is neither up nor known as gone, and must not come back as a live caller.
      if (ev.type !== "call.started") return;
      call = newCall(id, d.from, d.to, ev.at);
    }
    switch (ev.type) {
      case "call.started":
        call.from = d.from || call.from; call.to = d.to || call.to;
        break;
      case "message":
        if (d.party === "caller" && typeof d.score === "number") call.scores.push(d.score);
        if (d.party === "caller" && d.analysis) call.reading = reading(d.analysis);
        call.last = {party: d.party, text: d.text, score: d.score};
        break;
      case "status":  // where the call is now, as the store has it
        call.status = d.status;
        break;
      case "decision":
        call.decision = {rule: d.rule, reason: d.reason};
        break;
      case "transfer":
        if (d.status === "failed") call.failed += 1;
        call.transfer = {attempt: d.attempt, to: d.to, status: d.status, cause: d.cause};
        break;
      case "listening":
        call.listening = d.state === "resumed" ? null : d.state;
        break;
    }
  };

  // A caller line as the rules read it: the likeliest frustration class, its probability, how
  // likely annoyed or worse, and the intents at the bar (strongest first).
  const reading = (analysis) => {
    const f = analysis.frustration || {}, intents = analysis.intents || {};
    const level = Object.keys(f).reduce((a, b) => (a === null || f[b] > f[a] ? b : a), null);
    return {level, p: level === null ? 0 : f[level], strain: (f.annoyed || 0) + (f.angry || 0),
            intents: Object.entries(intents).filter(([, p]) => p >= bar).sort((a, b) => b[1] - a[1])};
  };

  // Upset: the caller's latest line reads annoyed or angry, as the rules read it. A call whose lines
  // came before the feed carried that reading falls back on the sentiment score.
  const upset = (call) => {
    if (call.reading) return call.reading.level === "annoyed" || call.reading.level === "angry";
    const s = call.scores;
    if (!s.length) return false;
    const recent = s.slice(-3);
    return s[s.length - 1] <= -0.3 || recent.reduce((a, b) => a + b, 0) / recent.length <= -0.2;
  };

  // Higher first: a transfer that failed, a listener lost, an upset caller, an agent ringing.
  const attention = (call) => {
    const t = call.transfer;
    if (t && t.status === "failed") return {level: 4, label: "No agent answered"};
    if (call.listening === "lost") return {level: 3, label: "Not listening"};
    const ringing = t && (t.status === "requested" || t.status === "ringing");
    if (upset(call) && call.status !== "transferred") {
      return {level: 3, label: ringing ? "Upset · agent ringing" : "Upset caller"};
    }
    if (ringing) return {level: 2, label: call.failed ? "Next agent ringing" : "Agent ringing"};
    if (call.listening === "paused") return {level: 1, label: "Listening paused"};
    if (call.status === "transferred") return {level: -1, label: "With an agent"};
    return {level: 0, label: "Calm"};
  };

  const sparkline = (scores) => {
    const box = L.svg("svg", {width: SPARK.w, height: SPARK.h, viewBox: `0 0 ${SPARK.w} ${SPARK.h}`,
                              class: "spark", role: "img"});
    const y = (v) => (1 - (Math.max(-1, Math.min(1, v)) + 1) / 2) * (SPARK.h - 4) + 2;
    box.append(L.svg("line", {x1: 0, x2: SPARK.w, y1: y(0), y2: y(0), class: "zero"}));
    const shown = scores.slice(-SPARK.n);
    if (!shown.length) {
      box.setAttribute("aria-label", "No sentiment score yet");  // an image without a name says nothing
      return box;
    }
    // The newest message at the right edge; the line grows leftwards as the caller talks.
    const step = shown.length > 1 ? Math.min((SPARK.w - 6) / (shown.length - 1), 24) : 0;
    const x = (i) => SPARK.w - 3 - (shown.length - 1 - i) * step;
    const points = shown.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    box.append(L.svg("polyline", {points: points.join(" "), class: "line"}));
    const last = shown[shown.length - 1];
    box.append(L.svg("circle", {cx: x(shown.length - 1), cy: y(last), r: 2.5,
                                class: last <= -0.2 ? "dot neg" : last > 0.05 ? "dot pos" : "dot"}));
    const title = L.svg("title");
    title.textContent = "caller's sentiment score (not what the rules read), line by line: "
      + shown.map((v) => v.toFixed(2)).join(", ");
    box.append(title);
    return box;
  };

  // The table is kept, not redrawn: one row per call (keyed by its id) whose cells change only
  // when what they show changes, and rows that move only when the attention order changes. A
  // reader's focus, and a screen reader's place, stay where they were while other calls change.
  const tbody = document.getElementById("calls");
  const endedList = document.getElementById("ended");
  const views = new Map();       // call id -> {tr, cells, keys}: its row and what each cell last showed
  const endedItems = new Map();  // call id -> its <li> under "Just ended"

  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  // True (once) when this part of a row has something new to show.
  const changed = (view, part, key) => {
    if (view.keys[part] === key) return false;
    view.keys[part] = key;
    return true;
  };
  const tone = (score) => score === null ? "" : score <= -0.2 ? " neg" : score > 0.05 ? " pos" : "";

  const newRow = (call) => {
    const tr = L.el("tr");
    tr.dataset.call = call.id;
    const cells = {};
    for (const part of ["badge", "caller", "since", "state", "mood", "words", "transfer"]) {
      cells[part] = tr.appendChild(L.el("td"));
    }
    cells.state.className = "state";
    cells.transfer.className = "transfer-cell";
    cells.mood.className = "mood-cell";
    cells.badge.append(L.el("span", "badge"));
    const link = cells.caller.appendChild(L.el("a", "number"));
    link.href = "/dashboard/calls/" + encodeURIComponent(call.id);
    const since = cells.since.appendChild(L.el("span", "elapsed", L.clock((Date.now() - call.started) / 1000)));
    since.dataset.started = String(call.started);
    cells.mood.append(L.el("span", "mood"));
    cells.words.append(L.el("span", "words"));
    const view = {tr, cells, keys: {}};
    views.set(call.id, view);
    return view;
  };

  // The latest caller line's frustration in words (and any intent at the bar), then the sentiment
  // score's sparkline. Without a reading (lines from before the feed carried it) the score is shown.
  const moodParts = (call) => {
    const parts = [];
    const r = call.reading;
    if (r && r.level !== null) {
      const level = L.el("span", "level" + ({angry: " neg", annoyed: " warn"}[r.level] || ""));
      level.append(L.el("span", "visually-hidden", "frustration: "),
                   name("frustration", r.level) + " " + r.p.toFixed(2));
      parts.push(level);
    }
    for (const [intent, p] of r ? r.intents : []) {
      parts.push(L.el("span", "tag intent", name("intent", intent) + " " + p.toFixed(2)));
    }
    const last = call.scores.length ? call.scores[call.scores.length - 1] : null;
    if (!r && last !== null) {
      parts.push(L.el("span", "score" + tone(last), "score " + (last > 0 ? "+" : "") + last.toFixed(2)));
    }
    parts.push(sparkline(call.scores));
    return parts;
  };

  const transferParts = (call) => {
    const parts = [];
    const t = call.transfer;
    if (t) {
      const cause = t.cause ? " (" + name("cause", t.cause) + ")" : "";
      parts.push(L.el("span", "transfer " + t.status, name("transfer", t.status) + " · " + t.to + cause));
    }
    if (call.decision) parts.push(L.el("div", "rule", name("rule", call.decision.rule)));
    return parts;
  };

  // A screen reader hears when a call comes to need attention (a failed transfer, a lost listener,
  // an upset caller), once per change, not every repaint of the table.
  const announce = (text) => {
    const node = document.getElementById("alerts");
    if (node) node.textContent = text;
  };
  const update = (view, call, a) => {
    const {tr, cells} = view;
    const level = "level-" + (a.level < 0 ? "done" : a.level);
    if (a.level >= 3 && view.announced !== a.label && view.announced !== undefined) {
      announce(a.label + ": " + (call.from || "unknown caller"));
    }
    view.announced = a.label;
    if (tr.className !== level) tr.className = level;
    setText(cells.badge.firstChild, a.label);
    setText(cells.caller.firstChild, call.from || "unknown");
    const listening = call.listening ? " · " + name("listening", call.listening) : "";
    setText(cells.state, name("status", call.status) + listening);
    if (changed(view, "mood", JSON.stringify([call.reading, call.scores]))) {
      cells.mood.firstChild.replaceChildren(...moodParts(call));
    }
    if (changed(view, "words", JSON.stringify(call.last))) {
      const said = call.last;
      cells.words.firstChild.replaceChildren(
        ...(said ? [L.el("span", "party", name("party", said.party)), L.el("span", "text", said.text)] : []));
    }
    if (changed(view, "transfer", JSON.stringify([call.transfer, call.decision]))) {
      cells.transfer.replaceChildren(...transferParts(call));
    }
  };

  // Puts `nodes` in this order under `parent`, moving only the ones out of place. moveBefore keeps
  // a moved link focused; where it is missing, render() gives the focus back.
  const place = (parent, nodes) => {
    nodes.forEach((node, i) => {
      const here = parent.children[i] || null;
      if (here === node) return;
      if (parent.moveBefore && node.isConnected) parent.moveBefore(node, here);
      else parent.insertBefore(node, here);
    });
  };

  const endedItem = (e) => {
    const li = L.el("li");
    li.dataset.call = e.call.id;
    const link = L.el("a", null, e.call.from || "unknown");
    link.href = "/dashboard/calls/" + encodeURIComponent(e.call.id);
    li.append(link, L.el("span", "muted", " · " + name("outcome", e.outcome) + " · " + L.localTime(e.at)));
    endedItems.set(e.call.id, li);
    return li;
  };

  const drawEnded = () => {
    const kept = new Set(ended.map((e) => e.call.id));
    for (const [id, li] of endedItems) if (!kept.has(id)) { li.remove(); endedItems.delete(id); }
    place(endedList, ended.map((e) => endedItems.get(e.call.id) || endedItem(e)));
  };

  // A link that lost focus by moving gets it back; one whose call just ended hands it to that
  // call's line under "Just ended", rather than dropping the reader at the top of the page.
  const keepFocus = (focused) => {
    if (!focused || focused === document.body || document.activeElement === focused) return;
    if (focused.isConnected) { focused.focus({preventScroll: true}); return; }
    const row = focused.closest("[data-call]");
    const li = row && endedItems.get(row.dataset.call);
    if (li) li.querySelector("a").focus({preventScroll: true});
  };

  let pending = false;
  const render = () => {
    pending = false;
    const focused = document.activeElement;
    for (const [id, view] of views) if (!calls.has(id)) { view.tr.remove(); views.delete(id); }
    // Within a level, the more strained caller first: likelier annoyed or worse, or (without a
    // reading) the lower score.
    const strain = (call) => call.reading ? call.reading.strain : -(call.scores.at(-1) ?? 0);
    const order = [...calls.values()].map((call) => ({call, a: attention(call), strain: strain(call)}));
    order.sort((x, y) => y.a.level - x.a.level || y.strain - x.strain || x.call.started - y.call.started
               || (x.call.id < y.call.id ? -1 : 1));
    for (const {call, a} of order) update(views.get(call.id) || newRow(call), call, a);
    place(tbody, order.map(({call}) => views.get(call.id).tr));
    document.getElementById("empty").hidden = order.length > 0;
    const count = order.length === 1 ? "1 call on the line" : order.length + " calls on the line";
    setText(document.getElementById("count"), count);
    drawEnded();
    keepFocus(focused);
  };
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(render); } };

  for (const e of boot.snapshot.ended || []) {  // oldest last, as the feed would have left them
    gone.add(e.call_control_id);
    ended.push({call: {id: e.call_control_id, from: e.from}, outcome: e.outcome, at: e.ended_at});
  }
  for (const c of boot.snapshot.calls) {
    const call = newCall(c.call_control_id, c.from, c.to, c.started_at, c.status);
    call.listening = c.listening === "resumed" ? null : c.listening;
    for (const ev of c.events) apply(ev);
    call.status = c.status;  // the store knows better than the replay (the menu, say)
  }
  render();

  // The feed is shared with the browser's other console tabs (feed.js); a hidden tab stops following.
  L.follow({
    after: boot.snapshot.after,
    kinds: ["call.started", "status", "message", "decision", "transfer", "listening", "call.ended"],
    onEvent: (event) => { apply(event); schedule(); },
    onState: (state) => L.showFeed(state, () => L.feedState("live", "live")),
  });
  // The clock on each row moves locally: nothing is asked of the server.
  setInterval(() => {
    if (document.body.classList.contains("stale")) return;  // a frozen view keeps its last times
    for (const node of document.querySelectorAll(".elapsed")) {
      node.textContent = L.clock((Date.now() - Number(node.dataset.started)) / 1000);
    }
  }, 1000);
});
