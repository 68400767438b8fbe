// Overview: the store's size and deduplication (from paging GET /v1/files,
// kept current by the live event feed) and the server's health and
// connection metrics (from /metrics, read every POLL_MS).

import { $, el, replace, fmtBytes, fmtNum, fmtSeconds } from "./dom.js";
import { rate, meanOver } from "./metrics.js";

const MAX_PAGES = 20; // 20,000 files: beyond that the totals say "at least"
const RESCAN_MS = 60000;

// totals are what the last scan found, plus the changes the event feed
// reported since. Events up to `upTo` are not applied: the feed's replay of
// history, and events that arrived during the scan, which it may already
// have counted (a rare miss is corrected by the next scan).
const totals = { files: 0, logical: 0, blobs: new Map(), partial: false, done: false, upTo: 0 };
let app;
let scanTimer = 0;

export function init(a) {
  app = a;
  a.on("event", onEvent);
  a.on("metrics", render);
  scan();
}

export function show() {
  render();
}

async function scan() {
  const t = { files: 0, logical: 0, blobs: new Map(), partial: false, done: true, upTo: 0 };
  try {
    let cursor = "";
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await app.api.request("GET", "/v1/files", { query: { limit: 1000, cursor } });
      for (const f of page.files) add(t, f, 1);
      cursor = page.next_cursor || "";
      if (!cursor) break;
      if (i === MAX_PAGES - 1) t.partial = true;
    }
    t.upTo = Math.max(app.historyUpTo, app.lastEventId);
    Object.assign(totals, t);
  } catch (e) {
    console.warn("file totals", e);
  }
  render();
  scanTimer = setTimeout(scan, RESCAN_MS);
}

function add(t, f, sign) {
  t.files += sign;
  t.logical += sign * f.size;
  const b = t.blobs.get(f.sha256) || { size: f.size, refs: 0 };
  b.refs += sign;
  if (b.refs > 0) t.blobs.set(f.sha256, b);
  else t.blobs.delete(f.sha256);
}

function onEvent(ev) {
  if (!totals.done || !ev.file || ev.id <= Math.max(totals.upTo, app.historyUpTo)) return;
  if (ev.type === "file.created" || ev.type === "file.restored") add(totals, ev.file, 1);
  else if (ev.type === "file.deleted") add(totals, ev.file, -1);
  else return;
  render();
}

function card(label, value, sub, id) {
  return el("div", { class: "card", "data-metric": id }, el("div", { class: "label", text: label }),
    el("div", { class: "value", text: value }), sub ? el("div", { class: "sub", text: sub }) : null);
}

function render() {
  if (!app || $("page-overview").hidden) return;
  let stored = 0;
  for (const b of totals.blobs.values()) stored += b.size;
  const atLeast = totals.partial ? "≥ " : "";
  const saved = totals.logical - stored;
  const cards = [
    card("Files", atLeast + fmtNum(totals.files), totals.done ? "live files" : "counting…", "files"),
    card("Logical bytes", atLeast + fmtBytes(totals.logical), "sum of file sizes", "logical"),
    card("Stored bytes", atLeast + fmtBytes(stored), "distinct contents", "stored"),
    card("Dedup savings", fmtBytes(saved), totals.logical > 0 ? fmtNum((100 * saved) / totals.logical, 1) + " % of logical" : "", "dedup"),
  ];
  const p = app.prev;
  const c = app.cur;
  if (c) {
    const up = rate(p, c, "filehub_uploads_total", { result: "stored" });
    const dd = rate(p, c, "filehub_uploads_total", { result: "deduplicated" });
    const uploads = up === null || dd === null ? null : (up + dd) * 60;
    const resumes = rate(p, c, "filehub_ws_resumes_total");
    cards.push(
      card("Uploads / min", fmtNum(uploads, 1), "stored + deduplicated", "uploads"),
      card("Live WebSocket sessions", fmtNum(c.sum("filehub_ws_sessions_connected")),
        fmtNum(c.sum("filehub_ws_sessions_active")) + " held (incl. waiting for resume)", "sessions"),
      card("Reconnects / min", fmtNum(resumes === null ? null : resumes * 60, 1),
        "since start: " + fmtNum(c.sum("filehub_ws_resumes_total", { result: "resumed" }) ?? 0) + " resumed, " +
        fmtNum(c.sum("filehub_ws_resumes_total", { result: "expired" }) ?? 0) + " expired", "reconnects"),
      card("Delivery (ping RTT)", fmtSeconds(meanOver(p, c, "filehub_ws_ping_rtt_seconds")), "mean over the last interval (a ping every " + fmtNum((app.ws.heartbeatMs || 0) / 1000) + " s)", "delivery"),
      card("Ack latency", fmtSeconds(meanOver(p, c, "filehub_ws_ack_latency_seconds")), "mean over the last interval", "ack"),
      card("Queue depth", fmtNum(c.sum("filehub_ws_outbox_frames")), "unacknowledged server frames", "queue"),
      card("Events delivered / s", fmtNum(rate(p, c, "filehub_ws_event_deliveries_total"), 2), "", "events"),
      card("Slow-consumer disconnects", fmtNum(c.sum("filehub_ws_slow_consumer_disconnects_total")), "since start", "slow"),
    );
  }
  replace($("ov-cards"), cards);
  replace($("ov-note"),
    "Files and bytes: from the file list (rescanned every minute, updated live from the event feed). " +
      "Trash size is not in the API (it lists live files only); the cleanup preview shows the trash due for purging. " +
      (c ? "Connection metrics: from /metrics, read every 15 s; rates need two reads." : "Connection metrics need a key with the metrics or admin scope."));
}
