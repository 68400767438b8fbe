// Overview: the store's totals (GET /v1/stats, counted by the server in one
// query, read again when the live event feed reports a change) and the
// server's health and connection metrics (from /metrics, read every
// POLL_MS).

import { $, el, replace, fmtBytes, fmtNum, fmtSeconds } from "./dom.js";
import { rate, meanOver } from "./metrics.js";

// The totals are read at sign-in, after a change the event feed reports
// (at most every MIN_READ_MS, or ten times as long as the last read took:
// a burst of uploads is one read, not one per file, and the server scans
// its records for each, a few seconds per million files) and every
// REREAD_MS as a safety net for a feed that was cut.
const MIN_READ_MS = 5000;
const REREAD_MS = 60000;

let stats = null; // the last GET /v1/stats answer
let statsError = "";
let app;
let lastRead = 0;
let lastTook = 0; // how long the last read took, ms
let readTimer = 0;
let reading = false;
let again = false;

export function init(a) {
  app = a;
  a.on("event", onEvent);
  a.on("metrics", render);
  readStats();
}

export function show() {
  render();
}

async function readStats() {
  clearTimeout(readTimer);
  readTimer = 0;
  if (reading) {
    again = true; // a change arrived during the read: read once more after it
    return;
  }
  reading = true;
  lastRead = Date.now();
  try {
    stats = await app.api.request("GET", "/v1/stats");
    statsError = "";
  } catch (e) {
    statsError = e.message || String(e);
  }
  lastTook = Date.now() - lastRead;
  reading = false;
  render();
  if (again) {
    again = false;
    soon();
  } else {
    readTimer = setTimeout(readStats, REREAD_MS);
  }
}

// soon reads the totals now, or as soon as the gap since the last read
// is long enough.
function soon() {
  if (reading) {
    again = true;
    return;
  }
  const wait = lastRead + Math.max(MIN_READ_MS, 10 * lastTook) - Date.now();
  if (wait <= 0) {
    readStats();
    return;
  }
  clearTimeout(readTimer);
  readTimer = setTimeout(readStats, wait);
}

function onEvent(ev) {
  // Also for the replay of recent history at sign-in: a change made
  // between the first read and the subscription is among those events,
  // and the throttle makes the whole replay one more read.
  if (ev.file || ev.type === "cleanup.finished") soon();
}

// lagText shows a caught-up hub as "0 s" rather than "0.0 ms".
function lagText(s) {
  return s === 0 ? "0 s" : fmtSeconds(s);
}

// card is one figure; title, if given, is shown on hover (the exact bytes).
function card(label, value, sub, id, title) {
  return el("div", { class: "card", "data-metric": id, title: title || null }, el("div", { class: "label", text: label }),
    el("div", { class: "value", text: value }), sub ? el("div", { class: "sub", text: sub }) : null);
}

function render() {
  if (!app || $("page-overview").hidden) return;
  const st = stats || {};
  const have = stats !== null;
  const v = (n, fmt) => (have ? fmt(n) : "–");
  const cards = [
    card("Files", v(st.files, fmtNum), have ? "live files" : statsError ? "cannot count" : "counting…", "files"),
    card("Logical bytes", v(st.logical_bytes, fmtBytes), "sum of file sizes", "logical", have && st.logical_bytes + " bytes"),
    card("Stored bytes", v(st.stored_bytes, fmtBytes), "distinct contents", "stored", have && st.stored_bytes + " bytes"),
    card("Dedup savings", v(st.dedup_savings_bytes, fmtBytes),
      have && st.logical_bytes > 0 ? fmtNum((100 * st.dedup_savings_bytes) / st.logical_bytes, 1) + " % of logical" : "", "dedup"),
    card("Trash", v(st.trash_bytes, fmtBytes), have ? fmtNum(st.trash_files) + " files, restorable until purged" : "", "trash",
      have && st.trash_bytes + " bytes"),
    card("Blob store", v(st.blob_bytes, fmtBytes),
      have ? fmtNum(st.blobs) + " contents, " + fmtNum(st.unreferenced_blobs) + " unreferenced (" + fmtBytes(st.unreferenced_bytes) + ") awaiting cleanup" : "",
      "blobs", have && st.blob_bytes + " bytes"),
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
      card("Event log lag", lagText(c.sum("filehub_events_lag_seconds")), "oldest event the server has not fanned out yet", "lag"),
      card("Events delivered / s", fmtNum(rate(p, c, "filehub_ws_event_deliveries_total"), 2), "", "events"),
      card("Slow-consumer disconnects", fmtNum(c.sum("filehub_ws_slow_consumer_disconnects_total")), "since start", "slow"),
    );
  }
  replace($("ov-cards"), cards);
  replace($("ov-note"),
    (statsError ? "Cannot read the totals: " + statsError + ". " : "") +
      "Files, bytes and trash: GET /v1/stats, counted by the server in one query, read again after each change the live feed reports (at most every 5 s). " +
      (c ? "Connection metrics: from /metrics, read every 15 s; rates need two reads." : "Connection metrics need a key with the metrics or admin scope."));
}
