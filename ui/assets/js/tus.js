// A small tus 1.0 client for the dashboard's uploads (the page has no build
// step, so no npm package): create the upload with POST /v1/uploads/, send
// the file in CHUNK-sized PATCHes, and when a chunk fails ask the server
// with HEAD how much it kept and go on from there. The upload URL is kept
// in sessionStorage under the file's name, size and modification time, so
// choosing the same file again after a reload resumes it.
//
// Only the key that created an upload (or an admin key) may see it: a
// stored URL another key cannot see answers 404 and a new upload starts.

import { ApiError } from "./api.js";

const ENDPOINT = "/v1/uploads/";
const VERSION = "1.0.0";
export const CHUNK = 8 * 1024 * 1024;
// Pauses before the retries of one failed chunk; a chunk that gets through
// starts the count again.
const RETRY_MS = [500, 1500, 4000, 8000];
const STORE_PREFIX = "filehub.tus:";

let offered = null;

// tusOffered reports whether the server speaks tus at /v1/uploads/
// (OPTIONS needs no key). The answer is asked once per page.
export function tusOffered() {
  if (!offered) {
    offered = fetch(ENDPOINT, { method: "OPTIONS", cache: "no-store", credentials: "omit" })
      .then((r) => r.ok && (r.headers.get("Tus-Version") || "").split(",").map((s) => s.trim()).includes(VERSION))
      .catch(() => false);
  }
  return offered;
}

// storeKey is where the upload URL of file is kept.
export function storeKey(file) {
  return STORE_PREFIX + JSON.stringify([file.name, file.size, file.lastModified]);
}

// b64 encodes a string's UTF-8 bytes in base64, as Upload-Metadata wants.
function b64(s) {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

// send makes one request with XMLHttpRequest (for its upload progress) and
// resolves to it once answered, whatever the status; a connection that
// fails or is aborted resolves to null.
function send(method, url, headers, body, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) {
      xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    }
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => resolve(null));
    xhr.addEventListener("abort", () => resolve(null));
    xhr.addEventListener("timeout", () => resolve(null));
    xhr.send(body === undefined ? null : body);
  });
}

// problem turns an error answer into an ApiError with its problem+json
// code and detail.
function problem(xhr, what) {
  if (!xhr) return new ApiError(0, "network", what + ": the connection failed");
  let b = {};
  try {
    b = JSON.parse(xhr.responseText || "{}") || {};
  } catch {
    b = {};
  }
  return new ApiError(xhr.status, b.code || "http_" + xhr.status, b.detail || b.title || what + " failed (HTTP " + xhr.status + ")");
}

// retryable: a failure that may pass if tried again (no answer, a 409 at
// the wrong offset, a 423 while the server still writes the cut-off
// request, rate limits and server errors).
function retryable(xhr) {
  return !xhr || xhr.status === 409 || xhr.status === 423 || xhr.status === 429 || xhr.status >= 500;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// TusUpload sends one File. start() resolves to {id, deduplicated, resumed}
// (resumed: the offset a stored upload was resumed from, or -1).
export class TusUpload {
  constructor(file, key, { onProgress = () => {}, chunkSize = CHUNK, storage = sessionStorage } = {}) {
    this.file = file;
    this.key = key;
    this.onProgress = onProgress;
    this.chunkSize = chunkSize;
    this.storage = storage;
    this.url = null;
    this.offset = 0;
    this.result = null;
  }

  headers(extra = {}) {
    return { Authorization: "Bearer " + this.key, "Tus-Resumable": VERSION, ...extra };
  }

  // take notes the finished file from an answer's Filehub-File-Id.
  take(xhr) {
    const id = xhr.getResponseHeader("Filehub-File-Id");
    if (id) this.result = { id, deduplicated: xhr.getResponseHeader("Filehub-Deduplicated") === "true" };
  }

  async start() {
    const skey = storeKey(this.file);
    let resumed = -1;
    const stored = this.storage.getItem(skey);
    if (stored && (await this.head(stored))) {
      this.url = stored;
      resumed = this.offset;
    } else {
      this.storage.removeItem(skey);
      await this.create();
      this.storage.setItem(skey, this.url);
    }
    this.onProgress(this.offset, this.file.size);
    await this.patchAll();
    if (!this.result) {
      // Finished by an earlier page whose last answer was lost: the HEAD
      // of a finished upload names its file.
      if (!(await this.head(this.url)) || !this.result) throw new ApiError(0, "tus", "the upload finished without a file id");
    }
    this.storage.removeItem(skey);
    return { ...this.result, resumed };
  }

  // head asks for the upload's offset; false when the upload is gone
  // (expired, terminated, another key's), throws on other failures.
  async head(url) {
    const xhr = await send("HEAD", url, this.headers());
    if (xhr && xhr.status === 200) {
      const off = Number(xhr.getResponseHeader("Upload-Offset"));
      if (!Number.isSafeInteger(off) || off < 0 || off > this.file.size) throw new ApiError(0, "tus", "the server answered a bad Upload-Offset");
      this.offset = off;
      this.take(xhr);
      return true;
    }
    if (xhr && (xhr.status === 404 || xhr.status === 410 || xhr.status === 403)) return false;
    throw problem(xhr, "asking for the upload's offset");
  }

  async create() {
    const md = ["filename " + b64(this.file.name)];
    if (this.file.type) md.push("filetype " + b64(this.file.type));
    const xhr = await send("POST", ENDPOINT, this.headers({
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": md.join(","),
    }));
    if (!xhr || xhr.status !== 201) throw problem(xhr, "creating the upload");
    const loc = xhr.getResponseHeader("Location");
    if (!loc) throw new ApiError(0, "tus", "the server created the upload without a Location");
    // Same origin only: the key must not go anywhere else.
    const u = new URL(loc, location.href);
    if (u.origin !== location.origin) throw new ApiError(0, "tus", "the upload URL is on another origin");
    this.url = u.pathname;
    this.offset = 0;
    this.take(xhr);
  }

  // patchAll sends the rest of the file; after a failed chunk it waits,
  // asks HEAD for the offset and goes on from there.
  async patchAll() {
    let failures = 0;
    while (!this.result && this.offset < this.file.size) {
      const from = this.offset;
      const body = this.file.slice(from, Math.min(from + this.chunkSize, this.file.size));
      const xhr = await send("PATCH", this.url, this.headers({
        "Upload-Offset": String(from),
        "Content-Type": "application/offset+octet-stream",
      }), body, (sent) => this.onProgress(from + Math.min(sent, body.size), this.file.size));
      if (xhr && xhr.status === 204) {
        const off = Number(xhr.getResponseHeader("Upload-Offset"));
        if (!Number.isSafeInteger(off) || off <= from || off > this.file.size) throw new ApiError(0, "tus", "the server answered a bad Upload-Offset");
        this.offset = off;
        this.take(xhr);
        this.onProgress(off, this.file.size);
        failures = 0;
        continue;
      }
      if (!retryable(xhr) || failures >= RETRY_MS.length) throw problem(xhr, "sending a chunk");
      await sleep(RETRY_MS[failures++]);
      let alive;
      try {
        alive = await this.head(this.url);
      } catch (e) {
        // The HEAD failed too: the next PATCH tries the same offset, and
        // a 409 brings the right one.
        if (e.code === "network" || e.status >= 500 || e.status === 429) continue;
        throw e;
      }
      if (!alive) throw new ApiError(410, "gone", "the upload expired or was removed on the server");
      this.onProgress(this.offset, this.file.size);
    }
  }
}
