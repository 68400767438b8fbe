// Cleanup (admin keys only): settings, a dry-run preview by kind with its
// targets, the last runs with their reports, the audit log with filters,
// and starting a real run after a confirmation that shows what the dry run
// found. A run the safety cap refuses is shown as such, with the server's
// message.

import { $, el, replace, fmtBytes, fmtNum, fmtTime, table, notice } from "./dom.js";

const MAX_TARGETS = 100; // per kind, in the page; the report holds them all

let app;
let auditAfter = 0;
let auditFilter = {};

export function init(a) {
  app = a;
  const admin = a.scopes.admin;
  $("cleanup-denied").hidden = admin;
  $("cleanup-body").hidden = !admin;
  if (!admin) {
    $("cleanup-start").remove();
    return;
  }
  $("cleanup-preview").addEventListener("click", preview);
  $("cleanup-start").addEventListener("click", confirmRun);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close());
  $("confirm-run").addEventListener("click", () => {
    $("confirm").close();
    realRun();
  });
  $("audit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const since = $("audit-since").value;
    auditFilter = {
      action: $("audit-action").value.trim(),
      run_id: $("audit-run").value,
      since: since ? new Date(since).toISOString() : "",
    };
    auditAfter = 0;
    loadAudit(false);
  });
  $("audit-more").addEventListener("click", () => loadAudit(true));
  a.on("event", (ev) => {
    if (ev.type === "cleanup.finished" && !$("page-cleanup").hidden) loadRuns();
  });
}

export function show() {
  if (!app.scopes.admin) return;
  loadSettings();
  loadRuns();
  loadAudit(false);
}

async function loadSettings() {
  try {
    const s = await app.api.request("GET", "/v1/cleanup/config");
    replace($("cleanup-settings"), table(["Setting", "Value"], Object.entries(s).map(([k, v]) => [k, String(v)]), { id: "settings-table" }));
  } catch (e) {
    replace($("cleanup-settings"), el("p", { class: "notice error", text: "Cannot read the settings: " + e.message }));
  }
}

// post starts a run. A refusal by the safety cap (409) is an answer, not
// a failure: the refused run is recorded with every target it would have
// deleted, so post returns {refused: message, report: that run's report}.
async function post(body) {
  try {
    return { report: await app.api.request("POST", "/v1/cleanup/runs", { body }) };
  } catch (e) {
    if (e.code !== "conflict" || !/safety cap/i.test(e.message)) throw e;
    const m = /run (\d+) lists the targets/.exec(e.message);
    let report = null;
    if (m) report = await app.api.request("GET", "/v1/cleanup/runs/" + m[1]);
    return { refused: e.message, report };
  }
}

function showRefusal(status, msg) {
  notice(status, "error", "Refused by the safety cap: " + msg);
}

async function preview() {
  const status = $("cleanup-status");
  notice(status, "info", "Running a dry run…");
  try {
    const { report, refused } = await post({ dry_run: true });
    if (refused) showRefusal(status, refused);
    else notice(status, "ok", "Dry run " + report.run_id + ": nothing was deleted. This is what a run would do now.");
    replace($("cleanup-report"), report ? renderReport(report) : "");
    loadRuns();
  } catch (e) {
    notice(status, "error", "Dry run failed: " + e.message);
  }
}

let forceNext = false;

async function confirmRun() {
  const status = $("cleanup-status");
  notice(status, "info", "Running a dry run first…");
  try {
    const { report, refused } = await post({ dry_run: true });
    notice(status, "info", "");
    replace($("confirm-summary"),
      refused ? el("p", { class: "notice error", text: "The safety cap refuses this run: " + refused }) : null,
      report ? summary(report) : null,
      refused ? el("label", {}, el("input", { type: "checkbox", id: "confirm-force", onchange: (e) => { forceNext = e.target.checked; } }),
        " Force: delete all of it anyway") : null);
    forceNext = false;
    $("confirm").showModal();
  } catch (e) {
    notice(status, "error", "Dry run failed: " + e.message);
  }
}

async function realRun() {
  const status = $("cleanup-status");
  notice(status, "info", "Cleanup running…");
  try {
    const { report, refused } = await post(forceNext ? { force: true } : {});
    if (refused) showRefusal(status, refused);
    else notice(status, "ok", "Run " + report.run_id + " finished: " + report.status + ", " + fmtBytes(report.bytes_freed) + " freed.");
    if (report) replace($("cleanup-report"), renderReport(report));
  } catch (e) {
    notice(status, "error", "Run not started: " + e.message);
  }
  loadRuns();
  loadAudit(false); // the run's deletions, under the filter in effect
}

// planned sums what a kind's targets would delete (or deleted): a dry
// run's or a refused run's counters stay 0, its targets say it all.
function planned(r) {
  const ts = (r.targets || []).filter((t) => t.action === "would_delete" || t.action === "deleted");
  return { n: ts.length, bytes: ts.reduce((b, t) => b + (t.bytes || 0), 0) };
}

function summary(rep) {
  let total = 0;
  const rows = Object.entries(rep.kinds || {}).map(([k, r]) => {
    const p = planned(r);
    total += p.bytes;
    return [k, fmtNum(p.n), fmtBytes(p.bytes)];
  });
  return el("div", {},
    table(["Kind", "Would delete", "Bytes"], rows, { id: "confirm-table" }),
    el("p", { text: "Total: " + fmtBytes(total) + "; planned blob deletions " + fmtNum(rep.planned_blob_deletions) + " of " +
      fmtNum(rep.total_blobs) + " blobs (cap: " + fmtNum((rep.settings || {}).max_delete_fraction * 100, 1) + " %)." }));
}

function renderReport(rep) {
  const head = el("p", { class: "note", text: "Run " + rep.run_id + " · " + (rep.dry_run ? "dry run" : "real run") + " · " + rep.status +
    " · by " + rep.actor + " (" + rep.trigger + ") · started " + fmtTime(rep.started_at) + (rep.error ? " · " + rep.error : "") });
  const kinds = Object.entries(rep.kinds || {}).map(([kind, r]) => {
    const targets = (r.targets || []).slice(0, MAX_TARGETS);
    const p = planned(r);
    const verb = rep.dry_run || rep.status === "refused" ? " would be deleted" : " deleted";
    return el("div", { class: "kind", "data-kind": kind },
      el("h3", { text: kind + ": " + fmtNum(r.found) + " found, " + fmtNum(Math.max(r.deleted, p.n)) + verb + ", " + fmtBytes(Math.max(r.bytes_freed, p.bytes)) }),
      targets.length ? table(["Target", "Bytes", "Action", "Reason"], targets.map((t) => [
        el("span", { class: "name", text: t.file_id || t.provider_file_id || t.sha256 || t.name || "" }), fmtBytes(t.bytes), t.action, t.reason || "",
      ])) : el("p", { class: "note", text: r.unsupported ? "not supported by this store" : "nothing to do" }),
      (r.targets || []).length > MAX_TARGETS ? el("p", { class: "note", text: "… and " + ((r.targets || []).length - MAX_TARGETS) + " more" }) : null);
  });
  return el("div", { id: "report" }, head, kinds);
}

async function loadRuns() {
  try {
    const { runs } = await app.api.request("GET", "/v1/cleanup/runs", { query: { last: 10 } });
    if (runs.length === 0) {
      replace($("cleanup-runs"), el("p", { class: "note", text: "No runs yet." }));
      return;
    }
    replace($("cleanup-runs"), table(["Run", "Started", "Trigger", "Actor", "Status", "Freed", ""],
      runs.map((r) => [String(r.run_id), fmtTime(r.started_at), r.trigger, r.actor, r.status + (r.dry_run ? " (dry run)" : ""), fmtBytes(r.bytes_freed),
        el("button", { type: "button", onclick: () => replace($("cleanup-report"), renderReport(r)) }, "Report")]), { id: "runs-table" }));
  } catch (e) {
    replace($("cleanup-runs"), el("p", { class: "notice error", text: "Cannot list runs: " + e.message }));
  }
}

async function loadAudit(more) {
  try {
    const page = await app.api.request("GET", "/v1/audit", { query: { ...auditFilter, after: more ? auditAfter : "", limit: 100 } });
    const rows = page.entries.map((a) => [String(a.id), fmtTime(a.time), a.actor, a.action, a.target_kind, el("span", { class: "name", text: a.target }),
      fmtBytes(a.bytes), a.run_id ? String(a.run_id) : "", a.reason || ""]);
    const t = table(["#", "Time", "Actor", "Action", "Kind", "Target", "Bytes", "Run", "Reason"], rows, { id: "audit-list" });
    if (more) {
      const tbody = $("audit-list").querySelector("tbody");
      tbody.append(...t.querySelector("tbody").children);
    } else {
      replace($("audit-table"), rows.length ? t : el("p", { class: "note", text: "No audit entries match." }));
    }
    auditAfter = page.next_after || 0;
    $("audit-more").hidden = !page.next_after;
  } catch (e) {
    replace($("audit-table"), el("p", { class: "notice error", text: "Cannot read the audit log: " + e.message }));
  }
}
