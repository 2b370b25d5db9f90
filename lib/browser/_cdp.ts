// A minimal Chrome DevTools Protocol client over Deno's built-in WebSocket
// (private to lib/browser/mod.ts).

/** A CDP event: `method` and `params`, with the `sessionId` of the target it came from. */
export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

interface Pending {
  method: string;
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One WebSocket connection to a browser's DevTools endpoint (flat sessions). */
export class CdpConnection {
  #ws: WebSocket;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Set<(event: CdpEvent) => void>();
  #closed = false;
  #closeReason = "connection closed";
  /** Timeout for each command, in milliseconds. */
  commandTimeoutMs: number;

  private constructor(ws: WebSocket, commandTimeoutMs: number) {
    this.#ws = ws;
    this.commandTimeoutMs = commandTimeoutMs;
    ws.onmessage = (message) => this.#onMessage(String(message.data));
    ws.onclose = () => this.#shutdown("DevTools connection closed");
    ws.onerror = () => this.#shutdown("DevTools connection failed");
  }

  /** Connects to `url` (a `ws://…/devtools/browser/…` endpoint). */
  static connect(url: string, timeoutMs: number): Promise<CdpConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`timed out connecting to ${url}`));
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new CdpConnection(ws, timeoutMs));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${url}`));
      };
    });
  }

  /** Sends a command and resolves with its result; rejects on a protocol error or timeout. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new Error(`${method}: ${this.#closeReason}`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${this.commandTimeoutMs} ms`));
      }, this.commandTimeoutMs);
      this.#pending.set(id, {
        method,
        resolve: resolve as (value: Record<string, unknown>) => void,
        reject,
        timer,
      });
      this.#ws.send(JSON.stringify(
        sessionId ? { id, method, params, sessionId } : {
          id,
          method,
          params,
        },
      ));
    });
  }

  /** Calls `listener` for every event; returns a function that removes it. */
  on(listener: (event: CdpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the first event for which `predicate` is true, or rejects after a timeout. */
  waitForEvent(predicate: (event: CdpEvent) => boolean, timeoutMs: number): Promise<CdpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no matching DevTools event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((event) => {
        if (!predicate(event)) return;
        clearTimeout(timer);
        off();
        resolve(event);
      });
    });
  }

  /** Closes the connection; pending commands are rejected. */
  close(): void {
    this.#shutdown("connection closed by client");
    try {
      this.#ws.close();
    } catch {
      // already closed
    }
  }

  #onMessage(text: string): void {
    let message: {
      id?: number;
      result?: Record<string, unknown>;
      error?: { message?: string; data?: string };
      method?: string;
      params?: Record<string, unknown>;
      sessionId?: string;
    };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) {
        const detail = message.error.data ? ` (${message.error.data})` : "";
        pending.reject(new Error(`${pending.method}: ${message.error.message}${detail}`));
      } else {
        pending.resolve(message.result ?? {});
      }
    } else if (message.method) {
      const event: CdpEvent = {
        method: message.method,
        params: message.params ?? {},
        sessionId: message.sessionId,
      };
      for (const listener of [...this.#listeners]) listener(event);
    }
  }

  #shutdown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`${pending.method}: ${reason}`));
    }
    this.#pending.clear();
  }
}
