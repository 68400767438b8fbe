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

async function dryRun() {
  return app.api.request("POST", "/v1/cleanup/runs", { body: { dry_run: true } });
}

async function preview() {
  const status = $("cleanup-status");
  notice(status, "info", "Running a dry run…");
  try {
    const rep = await dryRun();
    notice(status, "ok", "Dry run " + rep.run_id + ": nothing was deleted. This is what a run would do now.");
    replace($("cleanup-report"), renderReport(rep));
    loadRuns();
  } catch (e) {
    notice(status, "error", "Dry run failed: " + e.message);
  }
}

async function confirmRun() {
  const status = $("cleanup-status");
  notice(status, "info", "Running a dry run first…");
  try {
    const rep = await dryRun();
    notice(status, "info", "");
    replace($("confirm-summary"), summary(rep));
    $("confirm").showModal();
  } catch (e) {
    notice(status, "error", "Dry run failed: " + e.message);
  }
}

async function realRun() {
  const status = $("cleanup-status");
  notice(status, "info", "Cleanup running…");
  try {
    const rep = await app.api.request("POST", "/v1/cleanup/runs", { body: {} });
    notice(status, "ok", "Run " + rep.run_id + " finished: " + rep.status + ", " + fmtBytes(rep.bytes_freed) + " freed.");
    replace($("cleanup-report"), renderReport(rep));
  } catch (e) {
    // 409 conflict: another run holds the lease, or the safety cap
    // refused the run (the server's message says which and how to force).
    const capped = e.code === "conflict" && /cap|fraction|force/i.test(e.message);
    notice(status, "error", (capped ? "Refused by the safety cap: " : "Run not started: ") + e.message);
  }
  loadRuns();
}

function summary(rep) {
  const rows = Object.entries(rep.kinds || {}).map(([k, r]) => [k, fmtNum(r.found), fmtBytes(r.bytes_freed)]);
  return el("div", {},
    table(["Kind", "Would delete", "Bytes"], rows, { id: "confirm-table" }),
    el("p", { text: "Total: " + fmtBytes(rep.bytes_freed) + " of " + fmtNum(rep.total_blobs) + " blobs; planned blob deletions " +
      fmtNum(rep.planned_blob_deletions) + " (cap: " + fmtNum((rep.settings || {}).max_delete_fraction * 100, 1) + " %)." }));
}

function renderReport(rep) {
  const head = el("p", { class: "note", text: "Run " + rep.run_id + " · " + (rep.dry_run ? "dry run" : "real run") + " · " + rep.status +
    " · by " + rep.actor + " (" + rep.trigger + ") · started " + fmtTime(rep.started_at) + (rep.error ? " · " + rep.error : "") });
  const kinds = Object.entries(rep.kinds || {}).map(([kind, r]) => {
    const targets = (r.targets || []).slice(0, MAX_TARGETS);
    return el("div", { class: "kind", "data-kind": kind },
      el("h3", { text: kind + ": " + fmtNum(r.found) + " found, " + fmtNum(r.deleted) + (rep.dry_run ? " would be deleted" : " deleted") + ", " + fmtBytes(r.bytes_freed) }),
      targets.length ? table(["Target", "Bytes", "Action", "Reason"], targets.map((t) => [
        t.file_id || t.provider_file_id || t.sha256 || t.name || "", fmtBytes(t.bytes), t.action, t.reason || "",
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
