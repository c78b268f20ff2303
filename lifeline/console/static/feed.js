// The console's live feed, shared by all the console tabs of one browser.
//
// An EventSource holds an HTTP connection for as long as it is open, and a browser opens at most
// six HTTP/1.1 connections to one server: with a feed per tab, a seventh tab in view (and every
// other request to the server) would wait. So one tab, the holder of a Web Lock, keeps the only
// EventSource and relays what it hears to the other tabs over a BroadcastChannel. When it closes
// or is hidden the lock passes to another tab, which goes on from the last event it had. Where
// either API is missing (navigator.locks needs https or localhost) each tab has a feed of its own.
//
// Nothing is lost or applied twice, whoever relays: each relayed event carries `prev`, the id
// before it on the relaying tab's stream (or where that stream started). The server's stream
// leaves out nothing between two of its ids, so a tab that has everything up to `last` applies an
// event when prev <= last < id, skips it when id <= last, and when prev > last (it joined late, or
// the relaying tab changed) asks to be sent everything after `last` again.
"use strict";
(() => {
  const L = window.Lifeline;
  const KINDS = ["call.started", "status", "message", "decision", "transfer", "listening", "call.ended",
                 "summary.ready"];
  const KEPT = 500;  // events the relaying tab keeps, to answer a late tab without reconnecting
  const SHARED = Boolean(navigator.locks && window.BroadcastChannel);
  // The lock's and the channel's name: a change to the messages below needs a new one, or tabs
  // loaded before a release and after it would talk past each other.
  const NAME = "lifeline-feed-1";

  // Follows the feed after event id `after`: onEvent(event) once per event, in order, only those
  // of `call` and of `kinds` when given; onState("live" | "connecting" | "closed" | "hidden").
  // stop() ends it.
  L.follow = ({after, call, kinds, onEvent, onState}) => {
    let last = after;
    let stopped = false;
    const deliver = (data, id) => {
      last = id;
      const event = JSON.parse(data);
      const wanted = (!call || event.call_control_id === call) && (!kinds || kinds.includes(event.type));
      if (wanted) onEvent(event);
    };

    // One tab, one feed: what every tab did before the feed was shared. A hidden tab gives its
    // connection up, and takes it back from the last event it had when seen again.
    const alone = () => {
      let source = null;
      const open = () => {
        if (stopped) return;
        const only = call ? "call=" + encodeURIComponent(call) + "&" : "";
        const es = source = new EventSource("/api/events?" + only + "after=" + encodeURIComponent(last));
        for (const kind of kinds || KINDS) {
          es.addEventListener(kind, (m) => {
            const id = Number(m.lastEventId);
            if (id > last) deliver(m.data, id);  // else already applied
          });
        }
        es.onopen = () => onState("live");
        // The browser retries by itself unless the server refused outright (signed out, say).
        es.onerror = () => onState(es.readyState === EventSource.CLOSED ? "closed" : "connecting");
      };
      const close = () => { if (source) { source.close(); source = null; } };
      L.whileSeen(open, () => { if (!stopped) { close(); onState("hidden"); } });
      return close;
    };

    // A hidden tab leaves the group as it would give its own feed up: with no tab in view, the
    // browser holds no connection.
    const together = () => {
      let leave = null;
      const join = () => {
        if (stopped || leave) return;
        const channel = new BroadcastChannel(NAME);
        const queue = new AbortController();
        let left = false, release = null;
        let source = null, start = 0, pos = 0, kept = [], state = "connecting";
        let asked = null;  // the `last` this tab has asked to go on from (once each)
        const ask = () => {
          if (asked === last) return;
          asked = last;
          channel.postMessage({t: "need", after: last});
        };
        const take = (m) => {
          if (m.id <= last) return;
          if (m.prev > last) { if (source) open(last); else ask(); return; }
          deliver(m.data, m.id);
        };
        // The relaying tab's own stream; `kept` holds every event on it after `start`.
        const open = (from) => {
          if (source) source.close();
          start = pos = from;
          kept = [];
          const es = source = new EventSource("/api/events?after=" + encodeURIComponent(from));
          for (const kind of KINDS) {
            es.addEventListener(kind, (e) => {
              const m = {t: "event", id: Number(e.lastEventId), prev: pos, data: e.data};
              pos = m.id;
              kept.push(m);
              if (kept.length > KEPT) start = kept.shift().id;
              channel.postMessage(m);
              take(m);
            });
          }
          es.onopen = () => tell("live");
          es.onerror = () => {
            if (es.readyState !== EventSource.CLOSED) { tell("connecting"); return; }
            // Refused (signed out, say): every tab would be, as they share the session.
            tell("closed");
            quit();
          };
        };
        const tell = (now) => {
          state = now;
          channel.postMessage({t: "state", state, pos});
          onState(now);
        };
        // A tab needs every event after `after`: from what is kept, or from the server again.
        const serve = (after) => {
          if (after < start) open(after);
          else for (const m of kept) if (m.id > after) channel.postMessage(m);
        };
        channel.onmessage = ({data: m}) => {
          if (m.t === "event" && !source) take(m);  // a relaying tab has its own stream
          else if (m.t === "need" && source) {
            serve(m.after);
            channel.postMessage({t: "state", state, pos});  // how the feed is, for a tab just come
          } else if (m.t === "state" && !source) {
            asked = null;  // a new relaying tab has not heard what the old one was asked
            if (m.pos > last) ask();
            onState(m.state);
            if (m.state === "closed") quit();
          }
        };
        const quit = () => {
          if (left) return;
          left = true;
          queue.abort();
          if (source) { source.close(); source = null; }
          if (release) release();
          channel.close();
          leave = null;
        };
        leave = quit;
        navigator.locks.request(NAME, {signal: queue.signal}, () => new Promise((done) => {
          release = done;
          if (left) done();
          else open(last);
        })).catch(() => {});  // given up before its turn (hidden, closed, stopped)
        ask();  // a tab already relaying sends what this one missed since its snapshot
      };
      L.whileSeen(join, () => {
        if (stopped) return;
        if (leave) leave();
        onState("hidden");
      });
      return () => { if (leave) leave(); };
    };

    const end = SHARED ? together() : alone();
    return {stop: () => { stopped = true; end(); }};
  };

  // What a page says of its feed in each state; `live` says it in the live state.
  L.showFeed = (state, live) => {
    if (state === "live") live();
    else if (state === "connecting") L.feedState("connecting", "reconnecting…");
    else if (state === "closed") L.feedClosed();
    else L.feedState("connecting", "paused while this tab is hidden");
  };
})();
