/**
 * A minimal ZeroMQ (ZMTP 3.0, NULL security) client over plain TCP, enough for the client side
 * of Jupyter's channels: DEALER (shell, control, stdin), SUB (iopub) and REQ (heartbeat).
 *
 * Private helper of `kernel.ts`. Written in TypeScript on `Deno.connect` because the native
 * `zeromq` addon misses wake-ups under Deno: a receive waiting on a socket whose peer is
 * another process can stay pending forever (see the module docs of `kernel.ts`).
 *
 * Stream repair: the Deno 2.9 kernel publishes iopub messages from two tasks without
 * serializing their writes, so when a large message (a plotly figure of a few MB) needs several
 * `write` calls, a small message (typically the `idle` status) can land in the middle of it.
 * With a `verify` function (the HMAC check), a message that fails verification is searched for
 * complete, valid messages embedded in it; they are cut out, the outer message is parsed again
 * and, when it now verifies, both are delivered (outer first). If that fails, the reader skips
 * to the next valid message. {@linkcode ZmtpSocket.repaired} and {@linkcode ZmtpSocket.skipped}
 * count what happened.
 *
 * @module
 */
import { concatBytes } from "../util/bytes.ts";
import { delay } from "../util/async.ts";

/** Socket types this client can play. */
export type ZmtpSocketType = "DEALER" | "SUB" | "REQ";

/** Options for {@linkcode ZmtpSocket.connect}. */
export interface ZmtpConnectOptions {
  /** Give up connecting after this many milliseconds (default 20 000). */
  timeoutMs?: number;
  /** Delay between connection attempts while the peer is not listening yet (default 50). */
  retryMs?: number;
  /** Stops the connection attempts early. */
  signal?: AbortSignal;
  /**
   * Checks a received Jupyter message (its frames); enables stream repair (see module docs).
   * Messages are expected to start with the `<IDS|MSG>` delimiter frame and a 64-hex-digit
   * signature frame.
   */
  verify?: (frames: Uint8Array[]) => boolean;
}

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;
const MAX_FRAME = 1 << 30;
const encoder = new TextEncoder();
/** `<IDS|MSG>` as a ZMTP frame with MORE set, followed by the header of a 64-byte frame. */
const MESSAGE_START = new Uint8Array([0x01, 9, ...encoder.encode("<IDS|MSG>"), 0x01, 64]);

function greeting(): Uint8Array {
  const g = new Uint8Array(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3; // major version
  g[11] = 0; // minor version
  g.set(encoder.encode("NULL"), 12);
  return g; // as-server = 0, filler zero
}

/** Encodes one ZMTP frame. */
export function encodeFrame(body: Uint8Array, more: boolean, command = false): Uint8Array {
  const long = body.length > 255;
  const head = long ? 9 : 2;
  const out = new Uint8Array(head + body.length);
  out[0] = (more ? FLAG_MORE : 0) | (long ? FLAG_LONG : 0) | (command ? FLAG_COMMAND : 0);
  if (long) new DataView(out.buffer).setBigUint64(1, BigInt(body.length));
  else out[1] = body.length;
  out.set(body, head);
  return out;
}

function readyCommand(type: ZmtpSocketType): Uint8Array {
  const name = encoder.encode("READY");
  const key = encoder.encode("Socket-Type");
  const value = encoder.encode(type);
  const valueLength = new Uint8Array(4);
  new DataView(valueLength.buffer).setUint32(0, value.length);
  const body = concatBytes([
    Uint8Array.of(name.length),
    name,
    Uint8Array.of(key.length),
    key,
    valueLength,
    value,
  ]);
  return encodeFrame(body, false, true);
}

/** A growable byte buffer fed from a connection; positions are offsets into `bytes`. */
class InputBuffer {
  bytes = new Uint8Array(1 << 16);
  start = 0;
  end = 0;
  #conn: Deno.Conn;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Reads more bytes; false at end of stream. Offsets stay valid (no compaction here). */
  async fill(): Promise<boolean> {
    if (this.end === this.bytes.length) {
      const next = new Uint8Array(this.bytes.length * 2);
      next.set(this.bytes.subarray(0, this.end));
      this.bytes = next;
    }
    const got = await this.#conn.read(this.bytes.subarray(this.end));
    if (got === null) return false;
    this.end += got;
    return true;
  }

  /** Drops consumed bytes before `start` (call only between messages). */
  compact(): void {
    if (this.start === 0) return;
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.start > this.bytes.length / 2) {
      this.bytes.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
  }

  /** Removes the bytes [from, to) and shifts the rest left. */
  cut(from: number, to: number): void {
    this.bytes.copyWithin(from, to, this.end);
    this.end -= to - from;
  }

  async exact(n: number): Promise<Uint8Array> {
    while (this.end - this.start < n) {
      if (!(await this.fill())) throw new Deno.errors.UnexpectedEof("connection closed");
    }
    const out = this.bytes.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }
}

type Parsed = { frames: Uint8Array[]; next: number } | "more" | "bad";

/** Parses one multipart message at `from` without consuming; leading commands are skipped. */
function parseMessage(b: Uint8Array, from: number, end: number): Parsed {
  const frames: Uint8Array[] = [];
  let i = from;
  while (true) {
    if (i >= end) return "more";
    const flags = b[i];
    if (flags & ~0x07) return "bad";
    let size: number;
    let head: number;
    if (flags & FLAG_LONG) {
      if (i + 9 > end) return "more";
      const big = new DataView(b.buffer, b.byteOffset + i + 1, 8).getBigUint64(0);
      if (big > BigInt(MAX_FRAME)) return "bad";
      size = Number(big);
      head = 9;
    } else {
      if (i + 2 > end) return "more";
      size = b[i + 1];
      head = 2;
    }
    if (i + head + size > end) return "more";
    const body = b.subarray(i + head, i + head + size);
    i += head + size;
    if (flags & FLAG_COMMAND) {
      if (frames.length > 0) return "bad";
      continue; // e.g. PING between messages: nothing to answer for our peers
    }
    frames.push(body);
    if (!(flags & FLAG_MORE)) return { frames, next: i };
  }
}

/** Offsets in [from, to) where a Jupyter message (delimiter + signature frame) may start. */
function* messageStarts(b: Uint8Array, from: number, to: number): Generator<number> {
  const first = MESSAGE_START[0];
  for (let p = b.indexOf(first, from); p >= 0 && p < to; p = b.indexOf(first, p + 1)) {
    let ok = true;
    for (let k = 1; k < MESSAGE_START.length && ok; k++) ok = b[p + k] === MESSAGE_START[k];
    if (ok) yield p;
  }
}

const copy = (frames: Uint8Array[]) => frames.map((f) => f.slice());

/** One connected ZMTP socket; messages are arrays of frames. */
export class ZmtpSocket {
  readonly type: ZmtpSocketType;
  /** Messages recovered by cutting out another message written into their middle. */
  repaired = 0;
  /** Byte ranges skipped because they held no valid message. */
  skipped = 0;
  #conn: Deno.Conn;
  #in: InputBuffer;
  #verify?: (frames: Uint8Array[]) => boolean;
  #queue: Uint8Array[][] = [];
  #waiters: ((m: Uint8Array[] | null) => void)[] = [];
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    conn: Deno.Conn,
    type: ZmtpSocketType,
    verify?: (f: Uint8Array[]) => boolean,
  ) {
    this.#conn = conn;
    this.#in = new InputBuffer(conn);
    this.type = type;
    this.#verify = verify;
  }

  /**
   * Connects and completes the handshake, retrying until the deadline while the peer is not
   * listening yet, and while what answers resets the connection, closes it or is no ZMTP peer:
   * that is another process holding the port for a moment (a port check binds and closes it),
   * not the peer that is about to bind it. The signal also ends a handshake in progress.
   */
  static async connect(
    hostname: string,
    port: number,
    type: ZmtpSocketType,
    options: ZmtpConnectOptions = {},
  ): Promise<ZmtpSocket> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    while (true) {
      options.signal?.throwIfAborted();
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname, port, transport: "tcp" });
      } catch (e) {
        if (!(e instanceof Deno.errors.ConnectionRefused) || Date.now() > deadline) throw e;
        await delay(options.retryMs ?? 50);
        continue;
      }
      const socket = new ZmtpSocket(conn, type, options.verify);
      const abort = () => socket.close();
      options.signal?.addEventListener("abort", abort);
      // A peer that accepts and never greets must not hold the caller past the deadline.
      const timer = setTimeout(abort, Math.max(0, deadline - Date.now()));
      try {
        await socket.#handshake();
        options.signal?.throwIfAborted();
      } catch (e) {
        socket.close();
        if (options.signal?.aborted) throw options.signal.reason;
        if (Date.now() >= deadline) {
          throw new Error(`no ZMTP handshake with ${hostname}:${port}: ${(e as Error).message}`);
        }
        await delay(options.retryMs ?? 50);
        continue;
      } finally {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", abort);
      }
      socket.#readLoop();
      if (type === "SUB") await socket.send([new Uint8Array([1])]); // subscribe to everything
      return socket;
    }
  }

  async #handshake(): Promise<void> {
    await this.#write(greeting());
    const peer = await this.#in.exact(64);
    if (peer[0] !== 0xff || (peer[9] & 1) !== 1 || peer[10] < 3) {
      throw new Error("peer is not a ZMTP 3 endpoint");
    }
    await this.#write(readyCommand(this.type));
    const [flags] = await this.#in.exact(1);
    const size = flags & FLAG_LONG
      ? Number(new DataView((await this.#in.exact(8)).buffer).getBigUint64(0))
      : (await this.#in.exact(1))[0];
    await this.#in.exact(size);
    if (!(flags & FLAG_COMMAND)) throw new Error("peer did not send READY");
  }

  /** Parses at `from`, reading more input as needed; null at end of stream. */
  async #parse(from: number): Promise<Exclude<Parsed, "more"> | null> {
    while (true) {
      const r = parseMessage(this.#in.bytes, from, this.#in.end);
      if (r !== "more") return r;
      if (!(await this.#in.fill())) return null;
    }
  }

  #valid(frames: Uint8Array[]): boolean {
    return !this.#verify || this.#verify(frames);
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        this.#in.compact();
        const at = this.#in.start;
        const r = await this.#parse(at);
        if (r === null) return;
        if (r !== "bad" && this.#valid(r.frames)) {
          this.#in.start = r.next;
          this.#deliver(copy(r.frames));
          continue;
        }
        if (!this.#verify) throw new Error("malformed ZMTP stream");
        if (await this.#repair(at, r === "bad" ? this.#in.end : r.next)) continue;
        if (!(await this.#skip(at))) return;
      }
    } catch {
      // connection closed or broken
    } finally {
      this.close();
    }
  }

  /**
   * The message at `at` is malformed or failed verification: cut out complete valid messages
   * that start before `next` until it verifies. Delivers the repaired message, then the ones cut
   * out, and returns true. On failure the ones cut out are still delivered.
   */
  async #repair(at: number, next: number): Promise<boolean> {
    const inner: Uint8Array[][] = [];
    try {
      for (let attempt = 0; attempt < 16; attempt++) {
        let cut = false;
        for (const p of messageStarts(this.#in.bytes, at + 1, next)) {
          const m = await this.#parse(p);
          if (m === null) return false;
          if (m === "bad" || !this.#valid(m.frames)) continue;
          inner.push(copy(m.frames));
          this.#in.cut(p, m.next);
          cut = true;
          break;
        }
        if (!cut) return false;
        const outer = await this.#parse(at);
        if (outer === null) return false;
        if (outer !== "bad" && this.#valid(outer.frames)) {
          this.#in.start = outer.next;
          this.repaired++;
          this.#deliver(copy(outer.frames));
          return true;
        }
        next = outer === "bad" ? this.#in.end : outer.next;
      }
      return false;
    } finally {
      for (const m of inner) this.#deliver(m);
    }
  }

  /** Moves to the next possible message start after `at`; false at end of stream. */
  async #skip(at: number): Promise<boolean> {
    this.skipped++;
    while (true) {
      for (const p of messageStarts(this.#in.bytes, at + 1, this.#in.end)) {
        if (parseMessage(this.#in.bytes, p, this.#in.end) !== "bad") {
          this.#in.start = p; // the main loop verifies (and repairs) it
          return true;
        }
        at = p;
      }
      if (!(await this.#in.fill())) return false;
    }
  }

  #deliver(message: Uint8Array[]): void {
    if (this.type === "REQ" && message.length > 0 && message[0].length === 0) {
      message = message.slice(1); // REQ strips the empty delimiter frame REP echoes back
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(message);
    else this.#queue.push(message);
  }

  #write(bytes: Uint8Array): Promise<void> {
    const next = this.#writing.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    });
    this.#writing = next.catch(() => {});
    return next;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one multipart message (frames are written with a single write, never interleaved). */
  send(frames: Uint8Array[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("socket is closed"));
    const all = this.type === "REQ" ? [new Uint8Array(0), ...frames] : frames;
    return this.#write(concatBytes(all.map((f, i) => encodeFrame(f, i < all.length - 1))));
  }

  /** The next message, or `null` once the socket is closed. */
  receive(): Promise<Uint8Array[] | null> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Closes the connection; pending receives resolve with `null`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    for (const w of this.#waiters.splice(0)) w(null);
  }
}
