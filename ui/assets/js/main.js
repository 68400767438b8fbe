// The dashboard's entry point: sign-in, the WebSocket session, the key's
// scopes, the metrics reader and the hash router between the four pages.

import { Api } from "./api.js";
import { Session, RpcError } from "./ws.js";
import { parse, Snapshot, POLL_MS } from "./metrics.js";
import { $, notice } from "./dom.js";
import * as overview from "./overview.js";
import * as files from "./files.js";
import * as cleanup from "./cleanup.js";
import * as providers from "./providers.js";

const KEY = "filehub.key"; // sessionStorage only: gone when the tab closes
const pages = { overview, files, cleanup, providers };

// app is what the pages share.
const app = {
  api: null,
  ws: null,
  scopes: { read: true, write: false, admin: false },
  metricsAllowed: false,
  prev: null, // the previous metrics snapshot
  cur: null,
  listeners: { event: [], metrics: [], reset: [] },
  lastEventId: 0,
  historyUpTo: 0, // the latest event id when the feed started
  on(kind, fn) {
    this.listeners[kind].push(fn);
  },
  emit(kind, v) {
    for (const fn of this.listeners[kind]) {
      try {
        fn(v);
      } catch (e) {
        console.warn("listener failed", e);
      }
    }
  },
};

async function signIn(key) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
  const ws = new Session(url, key);
  await ws.open();
  app.api = new Api(key);
  app.ws = ws;
  await probeScopes();
  ws.addEventListener("state", (e) => showConn(e.detail));
  ws.addEventListener("event", (e) => {
    app.lastEventId = Math.max(app.lastEventId, e.detail.id);
    app.emit("event", e.detail);
  });
  ws.addEventListener("reset", () => subscribe());
  ws.addEventListener("closed", (e) => {
    showConn("closed");
    notice($("signin-error"), "error", "Disconnected: " + e.detail.message);
  });
  showConn(ws.state);
}

// probeScopes finds what the key may do without changing anything: the
// server checks a method's scope before its params, so a write request
// with an empty id is refused as "forbidden" without the write scope and
// as "invalid" with it; likewise cleanup.run with a field it refuses.
// Probing over the session keeps the browser console free of 403s.
async function probeScopes() {
  app.scopes.write = await probe("files.delete", { id: "" });
  app.scopes.admin = await probe("cleanup.run", { scope_probe: true });
  app.metricsAllowed = app.scopes.admin;
}

async function probe(method, params) {
  try {
    await app.ws.call(method, params);
    return true;
  } catch (e) {
    if (!(e instanceof RpcError)) throw e;
    return e.code !== "forbidden";
  }
}

// subscribe starts the event feed at the last 50 events, or after the last
// one handed to the page when the session was lost. The protocol's
// "after": 0 would replay the whole retained log, so the first subscription
// asks for nothing (after = the largest id) to learn the latest id, then
// moves its cursor back: a second events.subscribe replaces the first.
async function subscribe() {
  try {
    if (app.lastEventId > 0) {
      await app.ws.call("events.subscribe", { after: app.lastEventId });
      return;
    }
    const r = await app.ws.call("events.subscribe", { after: Number.MAX_SAFE_INTEGER });
    app.historyUpTo = r.latest; // what is replayed is history, not news
    const after = Math.max(r.latest - 50, r.oldest - 1, 0);
    await app.ws.call("events.subscribe", { after });
  } catch (e) {
    if (e.code === "gap") {
      app.lastEventId = 0; // events were trimmed: start again near the end
      notice($("signin-error"), "info", "Some events were trimmed from the server's log while disconnected: " + e.message);
      return subscribe();
    }
    if (e.code !== "closed") console.warn("subscribe failed", e);
  }
}

function showConn(state) {
  const c = $("conn");
  c.hidden = false;
  c.className = "conn " + state;
  c.textContent = "live: " + state + (app.ws && app.ws.reconnects ? " (" + app.ws.reconnects + " reconnects)" : "");
}

let metricsTimer = 0;

async function readMetrics() {
  try {
    const text = await app.api.text("/metrics");
    app.prev = app.cur;
    app.cur = new Snapshot(parse(text), Date.now());
    $("metrics-gate").hidden = true;
    app.emit("metrics", app.cur);
  } catch (e) {
    app.metricsAllowed = false;
    const gate = $("metrics-gate");
    gate.hidden = false;
    gate.firstChild.textContent = "Server metrics are not available with this key (" + e.message + "). ";
    return;
  }
  metricsTimer = setTimeout(readMetrics, POLL_MS);
}

function route() {
  const name = (location.hash || "#overview").slice(1);
  const page = pages[name] ? name : "overview";
  for (const p of Object.keys(pages)) {
    $("page-" + p).hidden = p !== page;
    const a = document.querySelector('nav a[data-page="' + p + '"]');
    a.classList.toggle("active", p === page);
  }
  $("metrics-gate").hidden = app.metricsAllowed || !(page === "overview" || page === "providers");
  pages[page].show(app);
}

async function start(key) {
  const err = $("signin-error");
  notice(err, "info", "");
  try {
    await signIn(key);
  } catch (e) {
    sessionStorage.removeItem(KEY);
    notice(err, "error", "Sign-in failed: " + (e.message || e));
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  const who = $("whoami");
  who.hidden = false;
  who.textContent = app.scopes.admin ? "admin key" : app.scopes.write ? "read/write key" : "read-only key";
  document.body.dataset.scopes = ["read", app.scopes.write && "write", app.scopes.admin && "admin"].filter(Boolean).join(" ");
  for (const p of Object.values(pages)) p.init(app);
  window.addEventListener("hashchange", route);
  route();
  // Only now that every page listens: the replay of recent events must
  // reach the feed.
  await subscribe();
  if (app.metricsAllowed) readMetrics();
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("key");
  const key = input.value.trim();
  input.value = "";
  if (key) start(key);
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  if (app.ws) app.ws.stop();
  clearTimeout(metricsTimer);
  location.hash = "";
  location.reload();
});

$("metrics-load").addEventListener("click", () => {
  app.metricsAllowed = true;
  $("metrics-gate").hidden = true;
  readMetrics();
});

const saved = sessionStorage.getItem(KEY);
if (saved) start(saved);
