// The HTTP API client. The key is sent as a bearer header on every call:
// never in a URL (URLs end up in logs and the history) and never in a
// cookie (which the browser would attach to requests other sites make).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  headers(extra = {}) {
    return { Authorization: "Bearer " + this.key, ...extra };
  }

  // request calls the API and returns the decoded JSON answer; an error
  // answer (problem+json) becomes an ApiError with its code and detail.
  async request(method, path, { query, body } = {}) {
    let url = path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
      }
      const s = q.toString();
      if (s) url += "?" + s;
    }
    const init = { method, headers: this.headers(), cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    return decode(resp);
  }

  // text fetches a text resource (/metrics).
  async text(path) {
    const resp = await fetch(path, { headers: this.headers(), cache: "no-store", credentials: "omit" });
    if (!resp.ok) await decode(resp);
    return resp.text();
  }

  // download fetches a file's content with the key and hands it to the
  // browser as a download of a blob: URL.
  async download(file) {
    const resp = await fetch("/v1/files/" + encodeURIComponent(file.id) + "/content", {
      headers: this.headers(), cache: "no-store", credentials: "omit",
    });
    if (!resp.ok) await decode(resp);
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = file.name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // upload sends one file as the raw body of POST /v1/files?name=… with
  // XMLHttpRequest, the one browser API that reports upload progress.
  // onProgress gets (sent, total). It resolves to the upload's answer.
  upload(file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/files?name=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("Authorization", "Bearer " + this.key);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) onProgress(e.loaded, e.total);
      });
      xhr.addEventListener("load", () => {
        const b = xhr.response || {};
        if (xhr.status >= 200 && xhr.status < 300) resolve(b);
        else reject(new ApiError(xhr.status, b.code || "http_" + xhr.status, b.detail || b.title || "upload failed"));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network", "the upload was cut off")));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "upload cancelled")));
      xhr.send(file);
    });
  }
}

async function decode(resp) {
  const type = resp.headers.get("Content-Type") || "";
  let body = null;
  if (type.includes("json")) {
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
  }
  if (resp.ok) return body;
  const code = (body && body.code) || "http_" + resp.status;
  const msg = (body && (body.detail || body.title)) || resp.statusText || "request failed";
  throw new ApiError(resp.status, code, msg);
}
