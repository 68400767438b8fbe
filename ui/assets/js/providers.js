// Providers: the API has no list of configured providers, so this page
// shows what the metrics say about each (pushes by result, files held and
// the file quota, API errors by status) and, for admin keys, the quotas the
// last cleanup run measured.

import { $, el, replace, fmtNum, table, notice } from "./dom.js";

let app;

export function init(a) {
  app = a;
  a.on("metrics", () => {
    if (!$("page-providers").hidden) renderMetrics();
  });
}

export function show() {
  renderMetrics();
  if (app.scopes.admin) loadQuota();
  else replace($("providers-quota"), el("p", { class: "note", text: "Needs an admin key (the cleanup's reports)." }));
}

function renderMetrics() {
  const c = app.cur;
  if (!c) {
    notice($("providers-status"), "info", "Waiting for the server's metrics (a key with the metrics or admin scope).");
    return;
  }
  const pushes = c.samples.filter((s) => s.name === "filehub_provider_pushes_total");
  const names = new Set(pushes.map((s) => s.labels.provider));
  for (const s of c.samples) if (s.name === "filehub_provider_file_quota" || s.name === "filehub_provider_files") names.add(s.labels.provider);
  names.delete(undefined);
  if (names.size === 0) {
    notice($("providers-status"), "info", "No provider is configured on this server.");
    replace($("providers-table"));
    replace($("providers-errors"));
    return;
  }
  notice($("providers-status"), "info", "");
  const rows = [...names].sort().map((p) => {
    const files = c.sum("filehub_provider_files", { provider: p });
    const quota = c.sum("filehub_provider_file_quota", { provider: p });
    const failed = pushes.filter((s) => s.labels.provider === p && s.labels.result !== "uploaded" && s.labels.result !== "reused")
      .reduce((n, s) => n + s.value, 0);
    const usage = files !== null && quota ? el("meter", { min: 0, max: quota, value: files, high: quota * 0.9, optimum: 0 }) : null;
    return { attrs: { "data-provider": p }, cells: [p, fmtNum(c.sum("filehub_provider_pushes_total", { provider: p, result: "uploaded" })),
      fmtNum(c.sum("filehub_provider_pushes_total", { provider: p, result: "reused" })), fmtNum(failed),
      el("span", {}, usage, " " + (files === null ? "not counted yet" : fmtNum(files)) + (quota ? " / " + fmtNum(quota) : ""))] };
  });
  replace($("providers-table"), table(["Provider", "Uploaded", "Reused", "Failed pushes", "Files / quota"], rows, { id: "providers-list" }));
  const errs = c.samples.filter((s) => s.name === "filehub_provider_api_errors_total" && s.value > 0)
    .map((s) => [s.labels.provider, s.labels.status, fmtNum(s.value)]);
  replace($("providers-errors"), errs.length ? table(["Provider", "Status", "Failed requests since start"], errs)
    : el("p", { class: "note", text: "No failed provider API requests since the server started." }));
}

async function loadQuota() {
  try {
    const { runs } = await app.api.request("GET", "/v1/cleanup/runs", { query: { last: 1 } });
    const q = runs.length ? runs[0].provider_quotas || [] : [];
    replace($("providers-quota"), q.length ? table(["Provider", "Files", "Quota", "Planned deletions", "Near quota"],
      q.map((x) => [x.provider, fmtNum(x.files), fmtNum(x.quota), fmtNum(x.planned), x.near ? "yes (≥ 90 %)" : "no"]))
      : el("p", { class: "note", text: "The last cleanup run measured no provider account." }));
  } catch (e) {
    replace($("providers-quota"), el("p", { class: "notice error", text: "Cannot read the last run: " + e.message }));
  }
}
