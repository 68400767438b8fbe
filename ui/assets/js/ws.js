// A small client of filehub's WebSocket protocol (docs/protocol.md): the
// hello/welcome handshake with the key in the hello token (browsers cannot
// set headers on a WebSocket), per-direction sequence numbers with
// cumulative acks, an outbox of unacknowledged requests, resume after a
// dropped connection (exponential backoff with full jitter), and RPC.
//
// Events: "open" (a welcome; detail.resumed), "reset" (a new session: the
// caller re-subscribes), "event" (detail: the event), "state" (detail:
// "connecting", "open", "reconnecting", "closed"), "closed" (permanent;
// detail: the reason).

const PROTOCOL = "filehub.v1";
// Close codes after which reconnecting cannot help (§9).
const PERMANENT = new Set([1009, 4001, 4002, 4007]);
const ACK_DELAY_MS = 20;

export class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Session extends EventTarget {
  constructor(url, token) {
    super();
    this.url = url;
    this.token = token;
    this.ws = null;
    this.ready = false; // welcomed on the current connection
    this.stopped = false;
    this.sessionId = "";
    this.resumeToken = "";
    this.inSeq = 0; // last server seq handed to the application
    this.outSeq = 0;
    this.outbox = []; // {seq, text, sent} not yet acknowledged
    this.pending = new Map(); // request id -> {resolve, reject, seq}
    this.ackTimer = 0;
    this.attempt = 0;
    this.reqN = 0;
    this.reconnects = 0;
    this.lastError = null;
    this.state = "connecting";
  }

  // open connects and resolves at the first welcome, or rejects with the
  // server's reason (a bad key: "unauthorized").
  open() {
    return new Promise((resolve, reject) => {
      const onOpen = () => {
        this.removeEventListener("closed", onClosed);
        resolve();
      };
      const onClosed = (e) => {
        this.removeEventListener("open", onOpen);
        reject(new RpcError(e.detail.code, e.detail.message));
      };
      this.addEventListener("open", onOpen, { once: true });
      this.addEventListener("closed", onClosed, { once: true });
      this.connect();
    });
  }

  connect() {
    this.setState(this.sessionId ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, PROTOCOL);
    this.ws = ws;
    ws.addEventListener("open", () => {
      const hello = { type: "hello", token: this.token, last_seq: 0 };
      if (this.sessionId) {
        hello.session_id = this.sessionId;
        hello.resume_token = this.resumeToken;
        hello.last_seq = this.inSeq;
      }
      ws.send(JSON.stringify(hello));
    });
    ws.addEventListener("message", (e) => {
      if (ws !== this.ws) return;
      if (typeof e.data !== "string") return this.fail(4002, "protocol", "binary message");
      for (const line of e.data.split("\n")) {
        if (!line) continue;
        let f;
        try {
          f = JSON.parse(line);
        } catch {
          return this.fail(4002, "protocol", "a frame is not JSON");
        }
        this.handle(f);
      }
    });
    ws.addEventListener("close", (e) => {
      if (ws !== this.ws) return;
      this.ready = false;
      this.ws = null;
      this.closed(e.code, e.reason);
    });
  }

  handle(f) {
    if (typeof f.ack === "number") {
      this.outbox = this.outbox.filter((o) => o.seq > f.ack);
    }
    switch (f.type) {
      case "welcome":
        return this.welcome(f);
      case "error":
        this.lastError = { code: f.code, message: f.message };
        return;
      case "ack":
        return;
      case "msg":
      case "res":
      case "event":
        break;
      default:
        return; // unknown types are ignored here; the server sends none
    }
    if (f.seq <= this.inSeq) {
      this.scheduleAck(); // a replayed duplicate: drop, but acknowledge
      return;
    }
    if (f.seq !== this.inSeq + 1) return this.fail(4002, "protocol", "sequence gap from the server");
    this.inSeq = f.seq;
    if (f.type === "res") {
      const p = this.pending.get(f.id);
      if (p) {
        this.pending.delete(f.id);
        if (f.error) p.reject(new RpcError(f.error.code, f.error.message));
        else p.resolve(f.result);
      }
    } else if (f.type === "event") {
      this.dispatchEvent(new CustomEvent("event", { detail: f.event }));
    }
    this.scheduleAck();
  }

  welcome(f) {
    const hadSession = this.sessionId !== "";
    this.sessionId = f.session_id;
    this.resumeToken = f.resume_token;
    this.heartbeatMs = f.heartbeat_ms;
    this.ready = true;
    this.attempt = 0;
    if (f.resumed) {
      // Re-send, with their original seq, what the server has not processed.
      this.outbox = this.outbox.filter((o) => o.seq > f.last_seq);
      for (const o of this.outbox) this.ws.send(o.text);
    } else {
      // A new session: what was transmitted may or may not have run, so
      // those requests fail; what was never sent is renumbered and sent.
      this.inSeq = 0;
      const unsent = this.outbox.filter((o) => !o.sent);
      for (const o of this.outbox.filter((o) => o.sent)) {
        const p = this.pending.get(o.id);
        if (p) {
          this.pending.delete(o.id);
          p.reject(new RpcError("session_lost", "the session was lost; the request may or may not have run"));
        }
      }
      this.outbox = [];
      this.outSeq = 0;
      for (const o of unsent) this.sendReq(o.id, o.frame);
    }
    this.setState("open");
    this.dispatchEvent(new CustomEvent("open", { detail: { resumed: f.resumed } }));
    if (!f.resumed && hadSession) this.dispatchEvent(new Event("reset"));
  }

  // call sends a request and resolves to its result, or rejects with an
  // RpcError carrying the server's error code.
  call(method, params = {}) {
    if (this.stopped) return Promise.reject(new RpcError("closed", "signed out"));
    const id = "r-" + ++this.reqN + "-" + Math.random().toString(36).slice(2, 8);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sendReq(id, { type: "req", id, method, params });
    });
  }

  sendReq(id, frame) {
    const seq = ++this.outSeq;
    const text = JSON.stringify({ ...frame, seq });
    const o = { seq, id, frame, text, sent: false };
    this.outbox.push(o);
    if (this.ready) {
      this.ws.send(text);
      o.sent = true;
    }
  }

  scheduleAck() {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = 0;
      if (this.ready) this.ws.send(JSON.stringify({ type: "ack", ack: this.inSeq }));
    }, ACK_DELAY_MS);
  }

  closed(code, reason) {
    if (this.stopped) return;
    const err = this.lastError;
    if (PERMANENT.has(code) || (!this.sessionId && err)) {
      this.stop();
      const detail = err || { code: "closed_" + code, message: reason || "connection closed (" + code + ")" };
      this.dispatchEvent(new CustomEvent("closed", { detail }));
      return;
    }
    if (!this.sessionId && code === 1006 && this.attempt === 0 && !this.everOpen) {
      // The upgrade itself was refused (401, 403, 429): the browser
      // does not say why; report it rather than retry for ever.
      this.stop();
      this.dispatchEvent(new CustomEvent("closed", { detail: { code: "refused", message: "the WebSocket upgrade was refused (bad key, or a key without the read scope)" } }));
      return;
    }
    this.lastError = null;
    this.reconnects++;
    // Full jitter: a random wait up to the exponential bound (§10).
    const bound = Math.min(30000, 250 * 2 ** this.attempt++);
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), Math.random() * bound);
  }

  fail(code, _kind, msg) {
    this.lastError = { code: "protocol", message: msg };
    if (this.ws) this.ws.close(code === 4002 ? 4002 : 1000, msg);
  }

  setState(s) {
    if (s === "open") this.everOpen = true;
    this.state = s;
    this.dispatchEvent(new CustomEvent("state", { detail: s }));
  }

  // stop closes the session for good (sign-out).
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    this.setState("closed");
    for (const p of this.pending.values()) p.reject(new RpcError("closed", "connection closed"));
    this.pending.clear();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }
}
