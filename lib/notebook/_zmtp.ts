/**
 * A minimal ZeroMQ (ZMTP 3.0, NULL security) client over plain TCP, enough for the client side
 * of Jupyter's channels: DEALER (shell, control, stdin), SUB (iopub) and REQ (heartbeat).
 *
 * Private helper of `kernel.ts`. Written in TypeScript on `Deno.connect` because the native
 * `zeromq` addon misses wake-ups under Deno: a receive waiting on a socket whose peer is
 * another process can stay pending forever (see the module docs of `kernel.ts`).
 *
 * @module
 */

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
}

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;
const encoder = new TextEncoder();

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
  const body = new Uint8Array(1 + name.length + 1 + key.length + 4 + value.length);
  let o = 0;
  body[o++] = name.length;
  body.set(name, o);
  o += name.length;
  body[o++] = key.length;
  body.set(key, o);
  o += key.length;
  new DataView(body.buffer).setUint32(o, value.length);
  o += 4;
  body.set(value, o);
  return encodeFrame(body, false, true);
}

/** Buffered reader of exact byte counts from a connection. */
class ByteReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #start = 0;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async exact(n: number): Promise<Uint8Array> {
    while (this.#buf.length - this.#start < n) {
      const chunk = new Uint8Array(Math.max(65536, n));
      const got = await this.#conn.read(chunk);
      if (got === null) throw new Deno.errors.UnexpectedEof("connection closed");
      const rest = this.#buf.subarray(this.#start);
      const merged = new Uint8Array(rest.length + got);
      merged.set(rest);
      merged.set(chunk.subarray(0, got), rest.length);
      this.#buf = merged;
      this.#start = 0;
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }
}

interface Frame {
  body: Uint8Array;
  more: boolean;
  command: boolean;
}

async function readFrame(reader: ByteReader): Promise<Frame> {
  const [flags] = await reader.exact(1);
  let size: number;
  if (flags & FLAG_LONG) {
    const b = await reader.exact(8);
    size = Number(new DataView(b.buffer).getBigUint64(0));
  } else {
    size = (await reader.exact(1))[0];
  }
  const body = size === 0 ? new Uint8Array(0) : await reader.exact(size);
  return { body, more: (flags & FLAG_MORE) !== 0, command: (flags & FLAG_COMMAND) !== 0 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One connected ZMTP socket; messages are arrays of frames. */
export class ZmtpSocket {
  readonly type: ZmtpSocketType;
  #conn: Deno.Conn;
  #reader: ByteReader;
  #queue: Uint8Array[][] = [];
  #waiters: ((m: Uint8Array[] | null) => void)[] = [];
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(conn: Deno.Conn, type: ZmtpSocketType) {
    this.#conn = conn;
    this.#reader = new ByteReader(conn);
    this.type = type;
  }

  /** Connects (retrying while the peer is not listening yet) and completes the handshake. */
  static async connect(
    hostname: string,
    port: number,
    type: ZmtpSocketType,
    options: ZmtpConnectOptions = {},
  ): Promise<ZmtpSocket> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    let conn: Deno.Conn | undefined;
    while (!conn) {
      options.signal?.throwIfAborted();
      try {
        conn = await Deno.connect({ hostname, port, transport: "tcp" });
      } catch (e) {
        if (!(e instanceof Deno.errors.ConnectionRefused) || Date.now() > deadline) throw e;
        await sleep(options.retryMs ?? 50);
      }
    }
    const socket = new ZmtpSocket(conn, type);
    try {
      await socket.#handshake();
    } catch (e) {
      socket.close();
      throw e;
    }
    socket.#readLoop();
    if (type === "SUB") await socket.send([new Uint8Array([1])]); // subscribe to everything
    return socket;
  }

  async #handshake(): Promise<void> {
    await this.#write(greeting());
    const peer = await this.#reader.exact(64);
    if (peer[0] !== 0xff || (peer[9] & 1) !== 1 || peer[10] < 3) {
      throw new Error("peer is not a ZMTP 3 endpoint");
    }
    await this.#write(readyCommand(this.type));
    const ready = await readFrame(this.#reader);
    if (!ready.command) throw new Error("peer did not send READY");
  }

  async #readLoop(): Promise<void> {
    let parts: Uint8Array[] = [];
    try {
      while (true) {
        const frame = await readFrame(this.#reader);
        if (frame.command) continue; // e.g. PING; nothing to do for our peers
        parts.push(frame.body);
        if (frame.more) continue;
        let message = parts;
        parts = [];
        if (this.type === "REQ") {
          // REQ strips the empty delimiter frame that REP echoes back.
          if (message.length > 0 && message[0].length === 0) message = message.slice(1);
        }
        const waiter = this.#waiters.shift();
        if (waiter) waiter(message);
        else this.#queue.push(message);
      }
    } catch {
      // connection closed or broken
    } finally {
      this.close();
    }
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

  /** Sends one multipart message. */
  send(frames: Uint8Array[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("socket is closed"));
    const all = this.type === "REQ" ? [new Uint8Array(0), ...frames] : frames;
    const encoded = all.map((f, i) => encodeFrame(f, i < all.length - 1));
    const total = encoded.reduce((n, f) => n + f.length, 0);
    const buf = new Uint8Array(total);
    let off = 0;
    for (const f of encoded) {
      buf.set(f, off);
      off += f.length;
    }
    return this.#write(buf);
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
