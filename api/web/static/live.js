// The WebSocket live feed (ARCHITECTURE §6): subscribe, hand every message on, and keep
// the connection alive: reconnect with jittered back-off, and treat a feed that has gone
// quiet (no heartbeat) as lost. Each (re)connection starts from the server's snapshot.

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_TOO_SLOW = 4408;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;
const QUIET_LIMIT_MS = 45000; // three missed heartbeats of 15 s

export class LiveConnection {
  /**
   * @param {object} options
   * @param {() => string} options.url the ws(s) URL, token included
   * @param {() => object} options.subscription the subscribe message
   * @param {(message: object) => void} options.onMessage
   * @param {(state: string, detail?: object) => void} options.onState
   *   "connecting", "live", "reconnecting" ({retryInS}) or "stopped"
   * @param {() => void} options.onUnauthorized
   */
  constructor(options) {
    this.options = options;
    this.socket = null;
    this.failures = 0;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastMessageAt = 0;
    this.stopped = true;
    this.onOnline = () => {
      if (this.retryTimer) this.reconnectNow();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.watchdog = setInterval(() => this.checkQuiet(), 5000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.drop();
    this.options.onState("stopped");
  }

  connect() {
    this.retryTimer = null;
    this.options.onState("connecting");
    const socket = new WebSocket(this.options.url());
    this.socket = socket;
    this.lastMessageAt = Date.now();
    socket.onopen = () => {
      socket.send(JSON.stringify(this.options.subscription()));
    };
    socket.onmessage = (event) => {
      this.lastMessageAt = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to crash on; the next message will do
      }
      if (message.type === "snapshot") {
        this.failures = 0;
        this.options.onState("live");
      }
      this.options.onMessage(message);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (event.code === CLOSE_UNAUTHORIZED) {
        this.stop();
        this.options.onUnauthorized();
        return;
      }
      this.scheduleReconnect(event.code === CLOSE_TOO_SLOW);
    };
  }

  /** Send a new subscription on the open connection (a new snapshot follows). */
  resubscribe() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(this.options.subscription()));
    }
  }

  scheduleReconnect(soon = false) {
    const backoff = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
    this.failures += 1;
    // Jitter spreads the reconnections of a whole control room after a server restart.
    const delay = soon ? FIRST_RETRY_MS : backoff / 2 + (Math.random() * backoff) / 2;
    this.options.onState("reconnecting", { retryInS: Math.ceil(delay / 1000) });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.connect();
  }

  checkQuiet() {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastMessageAt > QUIET_LIMIT_MS) {
      // The server (or the network) went away without a close: do not wait for TCP.
      this.drop();
      this.scheduleReconnect();
    }
  }

  drop() {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000, "client leaving");
    }
  }
}
