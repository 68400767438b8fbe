// Files: the paged list with a name-prefix search, uploads (chooser or drag
// and drop, with progress, resumable through tus), download, delete and restore, and the live
// feed of file events.
//
// GET /v1/files has no name filter: a prefix search pages through the list
// on the client (1,000 files a request, up to SCAN_LIMIT files) and shows
// the matches PAGE_SIZE at a time.

import { $, el, replace, fmtBytes, fmtTime, table, notice } from "./dom.js";
import { TusUpload, tusOffered } from "./tus.js";

const PAGE_SIZE = 50;
const SCAN_LIMIT = 50000;
const FEED_MAX = 100;

let app;
let cursors = [""]; // cursor of each page shown so far
let pageIndex = 0;
let prefix = "";
let scanMatches = null; // the prefix search's matches, or null
const trash = new Map(); // id -> file, from the feed
let refreshTimer = 0;

export function init(a) {
  app = a;
  $("file-input").addEventListener("change", (e) => {
    uploadAll([...e.target.files]);
    e.target.value = "";
  });
  const dz = $("dropzone");
  dz.hidden = !app.scopes.write;
  dz.addEventListener("dragover", (e) => {
    e.preventDefault();
    dz.classList.add("over");
  });
  dz.addEventListener("dragleave", () => dz.classList.remove("over"));
  dz.addEventListener("drop", (e) => {
    e.preventDefault();
    dz.classList.remove("over");
    uploadAll([...e.dataTransfer.files]);
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    prefix = $("search").value;
    reset();
  });
  $("search-clear").addEventListener("click", () => {
    $("search").value = "";
    prefix = "";
    reset();
  });
  $("files-next").addEventListener("click", () => {
    pageIndex++;
    load();
  });
  $("files-prev").addEventListener("click", () => {
    pageIndex = Math.max(0, pageIndex - 1);
    load();
  });
  a.on("event", onEvent);
}

export function show() {
  load();
}

function reset() {
  cursors = [""];
  pageIndex = 0;
  scanMatches = null;
  load();
}

async function load() {
  const status = $("files-status");
  try {
    let files;
    let hasNext;
    if (prefix) {
      if (!scanMatches) scanMatches = await scan(prefix);
      files = scanMatches.files.slice(pageIndex * PAGE_SIZE, (pageIndex + 1) * PAGE_SIZE);
      hasNext = (pageIndex + 1) * PAGE_SIZE < scanMatches.files.length;
      notice(status, "info", scanMatches.files.length + " files start with “" + prefix + "”" +
        (scanMatches.truncated ? " among the first " + SCAN_LIMIT + " files" : "") + " (filtered in the browser: the API has no name filter).");
    } else {
      const page = await app.api.request("GET", "/v1/files", { query: { limit: PAGE_SIZE, cursor: cursors[pageIndex] } });
      files = page.files;
      cursors[pageIndex + 1] = page.next_cursor || "";
      hasNext = Boolean(page.next_cursor);
      notice(status, "info", "");
    }
    renderList(files);
    $("files-prev").disabled = pageIndex === 0;
    $("files-next").disabled = !hasNext;
    $("files-page").textContent = "page " + (pageIndex + 1);
  } catch (e) {
    notice(status, "error", "Cannot list files: " + e.message);
  }
  renderTrash();
}

async function scan(p) {
  const out = [];
  let cursor = "";
  let seen = 0;
  do {
    const page = await app.api.request("GET", "/v1/files", { query: { limit: 1000, cursor } });
    for (const f of page.files) if (f.name.startsWith(p)) out.push(f);
    seen += page.files.length;
    cursor = page.next_cursor || "";
  } while (cursor && seen < SCAN_LIMIT);
  return { files: out, truncated: Boolean(cursor) };
}

function actions(f, deleted) {
  const cells = [];
  if (!deleted) cells.push(el("button", { type: "button", class: "download", onclick: () => download(f) }, "Download"));
  if (app.scopes.write) {
    if (deleted) cells.push(el("button", { type: "button", class: "restore", onclick: () => act("restore", f) }, "Restore"));
    else cells.push(el("button", { type: "button", class: "delete", onclick: () => act("delete", f) }, "Delete"));
  }
  return cells;
}

function renderList(files) {
  if (files.length === 0) {
    replace($("files-table"), el("p", { class: "note", text: prefix ? "No file starts with this prefix." : "No files yet." }));
    return;
  }
  replace($("files-table"), table(["Name", "Size", "Type", "Created", ""],
    files.map((f) => ({
      attrs: { "data-id": f.id },
      cells: [el("span", { class: "name", text: f.name }), fmtBytes(f.size), f.content_type, fmtTime(f.created_at), actions(f, false)],
    })), { id: "files-list" }));
}

function renderTrash() {
  const list = [...trash.values()];
  if (list.length === 0) {
    replace($("trash-table"), el("p", { class: "note", text: "No deleted file in the feed." }));
    return;
  }
  replace($("trash-table"), table(["Name", "Size", "Deleted", "Purge after", ""],
    list.map((f) => ({
      attrs: { "data-id": f.id },
      cells: [el("span", { class: "name", text: f.name }), fmtBytes(f.size), fmtTime(f.deleted_at), fmtTime(f.purge_after), actions(f, true)],
    })), { id: "trash-list" }));
}

async function download(f) {
  try {
    await app.api.download(f);
  } catch (e) {
    notice($("files-status"), "error", "Download failed: " + e.message);
  }
}

async function act(what, f) {
  try {
    const path = "/v1/files/" + encodeURIComponent(f.id) + (what === "restore" ? "/restore" : "");
    const res = await app.api.request(what === "restore" ? "POST" : "DELETE", path);
    if (what === "delete") trash.set(res.id, res);
    else trash.delete(res.id);
    notice($("files-status"), "ok", (what === "delete" ? "Deleted " : "Restored ") + res.name);
    load();
  } catch (e) {
    notice($("files-status"), "error", (what === "delete" ? "Delete" : "Restore") + " failed: " + e.message);
  }
}

function uploadAll(list) {
  for (const file of list) uploadOne(file);
}

async function uploadOne(file) {
  const bar = el("progress", { max: file.size || 1, value: 0 });
  const state = el("span", { class: "state", text: "uploading" });
  const row = el("li", {}, el("span", { class: "name", text: file.name }), bar, state);
  $("uploads").prepend(row);
  try {
    const progress = (sent, total) => {
      bar.max = total || 1;
      bar.value = sent;
    };
    // Resumable through tus when the server offers it; a plain POST
    // /v1/files otherwise (see decisions.md).
    let res;
    if (await tusOffered()) {
      res = await new TusUpload(file, app.api.key, { onProgress: progress }).start();
      row.dataset.via = "tus";
      if (res.resumed > 0) row.dataset.resumed = String(res.resumed);
    } else {
      res = await app.api.upload(file, progress);
      row.dataset.via = "post";
    }
    bar.value = bar.max;
    if (res.id) row.dataset.fileId = res.id;
    state.textContent = res.deduplicated ? "stored (deduplicated)" : "stored";
    state.className = "state ok";
    scheduleRefresh();
  } catch (e) {
    state.textContent = "failed: " + e.message;
    state.className = "state error";
  }
}

// scheduleRefresh reloads the list once for a burst of changes.
function scheduleRefresh() {
  if ($("page-files").hidden || refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = 0;
    load();
  }, 1000);
}

function onEvent(ev) {
  const f = ev.file;
  if (f) {
    if (ev.type === "file.deleted") trash.set(f.id, f);
    if (ev.type === "file.restored" || ev.type === "file.purged") trash.delete(f.id);
  }
  const what = f ? f.name : ev.run ? "run " + ev.run.id + " (" + (ev.run.status || "") + ")" : "";
  const item = el("li", { "data-type": ev.type }, el("time", { text: fmtTime(ev.time) + " · #" + ev.id }),
    el("span", { class: "type", text: ev.type }), el("span", { class: "name", text: what }));
  const feed = $("feed");
  feed.prepend(item);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
  if (f) scheduleRefresh();
}


