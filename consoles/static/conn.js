// The console's connection to the gateway (docs/protocol.md, "Console websocket").
//
// It says hello with the last seq it holds, so a reconnect gets exactly the
// deltas it missed (or a fresh snapshot, which replaces the picture). Commands
// and queries are requests with an id; each resolves with the server's result.
//
// Close codes: 4401 (token refused or revoked: stop), 4403 (a role that opens
// no console: stop), 4409 (resync: reconnect at once),
// 4429 (busy: wait what the server said, or 1-5 s). Anything else: back off
// 0.5-5 s with jitter, so a thousand consoles do not come back in one instant.

export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_RESYNC = 4409;
export const CLOSE_BUSY = 4429;
const REQUEST_TIMEOUT_MS = 20000;

const jitter = (lo, hi) => lo + Math.random() * (hi - lo);

let counter = 0;
function requestId() {
  // crypto.randomUUID needs a secure context; a console on a LAN address over http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `r${Date.now().toString(36)}-${(++counter).toString(36)}-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class Connection {
  /**
   * handlers: onState(state, detail), onWelcome(welcome), onSnapshot(snapshot),
   * onDelta(event, view: its stream's view after it, null to remove), onError(error message)
   */
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.on = handlers;
    this.seq = null;           // the last seq applied: what a reconnect resumes from
    this.welcome = null;
    this.ws = null;
    this.state = "connecting";
    this.attempts = 0;
    this.pending = new Map();  // request_id -> {resolve, reject, timer}
    this.retryTimer = null;
    this.stopped = false;
    this.busyDelay = null;
    this.resyncAsked = false;
    this.refused = null;       // the error that shut this console out, if any
    this.everConnected = false;
    addEventListener("online", () => { if (this.retryTimer) this.reconnectNow(); });
  }

  start() {
    this.connect();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.on.onState(state, detail);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped) return;
    this.busyDelay = null;
    this.resyncAsked = false;
    this.setState(this.everConnected ? "resyncing" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: "hello", token: this.token };
      if (this.seq !== null) hello.since = this.seq;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (m) => this.receive(JSON.parse(m.data));
    ws.onclose = (e) => { if (this.ws === ws) this.closed(e.code); };
  }

  reconnectNow() {
    this.attempts = 0;
    this.connect();
  }

  receive(msg) {
    switch (msg.type) {
      case "welcome":
        this.welcome = msg;
        this.attempts = 0;
        this.everConnected = true;
        this.on.onWelcome(msg);
        if (msg.mode === "resume") this.setState("connected");
        break;
      case "snapshot":
        this.seq = msg.seq;
        this.on.onSnapshot(msg);
        this.setState("connected");
        break;
      case "delta":
        if (this.seq !== null && msg.seq <= this.seq) return;  // seen already
        this.seq = msg.seq;
        this.on.onDelta(msg.event, msg.view ?? null);
        break;
      case "positions":  // units that moved since the last one: latest wins, no seq
        this.on.onPositions?.(msg.units || []);
        break;
      case "result": {
        const waiting = this.pending.get(msg.request_id);
        if (waiting) {
          this.pending.delete(msg.request_id);
          clearTimeout(waiting.timer);
          waiting.resolve(msg);
        }
        break;
      }
      case "resync":
        this.resyncAsked = true;
        this.setState("resyncing");
        break;
      case "error":
        if (msg.code === "unauthorized" || msg.code === "revoked" || msg.code === "forbidden") {
          this.refused = msg;
        } else if (msg.code === "busy") {
          this.busyDelay = delayIn(msg);
        } else if (msg.code === "too_many_consoles") {
          this.busyDelay = delayIn(msg);
          this.on.onError(msg);
        } else {
          this.on.onError(msg);
        }
        break;
      default:
        break;
    }
  }

  closed(code) {
    this.ws = null;
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.resolve({ ok: false, code: "offline",
        message: "The connection dropped before ECC answered; check the incident's timeline to see whether it was done." });
    }
    this.pending.clear();
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN || this.refused) {
      this.stopped = true;
      this.setState("refused", { message: this.refused ? this.refused.message : null });
      return;
    }
    if (code === CLOSE_RESYNC || this.resyncAsked) {
      this.connect();  // at once, with since
      return;
    }
    let delay;
    if (code === CLOSE_BUSY) {
      delay = this.busyDelay ?? jitter(1, 5);
    } else {
      const ceiling = Math.min(5, 0.5 * 2 ** this.attempts);
      delay = Math.max(0.5, jitter(ceiling / 2, ceiling));
      this.attempts += 1;
    }
    this.setState("offline", { retryAt: Date.now() + delay * 1000 });
    this.retryTimer = setTimeout(() => this.connect(), delay * 1000);
  }

  /** Send a command or query; resolves with the result message (never rejects). */
  request(body) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state === "connecting") {
      return Promise.resolve({ ok: false, code: "offline", message: "Not connected to ECC: nothing was sent. Try again when the indicator shows connected." });
    }
    const request_id = requestId();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(request_id);
        resolve({ ok: false, code: "timeout",
          message: "ECC did not answer within 20 s; check the incident's timeline to see whether it was done." });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(request_id, { resolve, timer });
      this.ws.send(JSON.stringify({ ...body, request_id }));
    });
  }

  command(name, incidentId, args = {}) {
    const body = { type: "command", name, args };
    if (incidentId) body.incident_id = incidentId;
    return this.request(body);
  }

  query(name, incidentId) {
    return this.request({ type: "query", name, incident_id: incidentId });
  }
}

/** The delay a busy server asks for: a retry_after field, or "… N s" in its message; else 1-5 s. */
function delayIn(msg) {
  if (typeof msg.retry_after === "number") return Math.max(0.5, msg.retry_after);
  const found = /(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)/i.exec(msg.message || "");
  return found ? Math.max(0.5, Math.min(60, Number(found[1]))) : jitter(1, 5);
}
