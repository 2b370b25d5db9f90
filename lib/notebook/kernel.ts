/**
 * A Jupyter client for the Deno kernel: starts `deno jupyter --kernel` itself, speaks the
 * Jupyter messaging protocol 5.3 over ZeroMQ (ZMTP 3.0 on loopback TCP), and executes code
 * while collecting every output message the code produced.
 *
 * Outputs are routed to the request that caused them by `parent_header.msg_id`, never by
 * timing. An execution is complete only when its `execute_reply` and its `idle` status were
 * seen, a round trip through the kernel's output queue came back (a silent "flush probe"
 * execution that broadcasts a marker), and iopub then stayed quiet for that request for a
 * short period. Messages that still arrive later are attached to their request: the
 * {@linkcode ExecuteResult.messages} list keeps growing and `onMessage` keeps being called
 * until a later execution on the kernel has finished. Then the request's route is released, so
 * that a long-lived kernel does not keep every execution's outputs alive (the Deno kernel tags
 * output with the request current when it is published, so output published from then on
 * belongs to the later request anyway).
 *
 * Start without races: the kernel binds the ports the client chose, so another process can take
 * one in between (another client checking a port, another kernel). The client notices (the
 * kernel dies with AddrInUse, a channel's first message is signed with another key, or a
 * connection to a stranger closes) and starts a new kernel on new ports, at most
 * {@linkcode KernelOptions.startAttempts} times; until the kernel has answered with this client's
 * key, only kernel_info requests are sent.
 *
 * The kernel process is never left behind: {@linkcode Kernel.shutdown} asks it to exit and
 * kills it if needed; SIGINT first interrupts every running kernel by message (and kills the ones
 * that do not stop), SIGTERM and process exit kill them; a kernel whose
 * client was killed outright (SIGKILL) exits by itself within a second (Linux: it watches its
 * parent process id); a kernel that dies (or stops answering heartbeats) rejects the pending
 * execution with {@linkcode KernelDiedError}.
 *
 * Why not the `zeromq` npm addon: under Deno, its sockets miss wake-ups from peers in other
 * processes (a DEALER's `receive()` waiting for the kernel's reply never settles), so this
 * module carries a small ZMTP implementation in `_zmtp.ts` instead. That implementation also
 * repairs iopub streams where the Deno 2.9 kernel wrote one message into the middle of a large
 * one (its iopub writes are not serialized); every message is checked against its HMAC.
 *
 * @example
 * ```ts
 * import { Kernel } from "./kernel.ts";
 * await using kernel = await Kernel.start({ cwd: "notebooks" });
 * const result = await kernel.execute(`console.log("hi"); 1 + 1`, { timeoutMs: 10_000 });
 * console.log(result.status, result.messages.map((m) => m.header.msg_type));
 * ```
 * @module
 */
import { join } from "node:path";
import { type Deferred, deferred, delay, withTimeout } from "../util/async.ts";
import {
  type ConnectionInfo,
  type DecodeFailure,
  decodeMessage,
  encodeMessage,
  makeHeader,
  type Message,
  newConnectionInfo,
  verifySignature,
} from "./_protocol.ts";
import { ZmtpSocket, type ZmtpSocketType } from "./_zmtp.ts";

export type { Message, MessageHeader } from "./_protocol.ts";

/** Options for {@linkcode Kernel.start}. */
export interface KernelOptions {
  /** Working directory of the kernel process (relative imports and deno.json resolve here). */
  cwd?: string;
  /** The `deno` executable (default: `Deno.execPath()`). */
  denoPath?: string;
  /**
   * The kernel's command line as a kernelspec's `argv`, `{connection_file}` standing for the
   * connection file (default: `[denoPath, "jupyter", "--kernel", "--conn", "{connection_file}"]`).
   */
  argv?: string[];
  /** Extra environment variables for the kernel. */
  env?: Record<string, string>;
  /** Give up when the kernel is not ready after this long, per attempt (default 60 000 ms). */
  startupTimeoutMs?: number;
  /**
   * Attempts with new ports when another process took one of the kernel's ports before it
   * bound it, or owns one (default 5).
   */
  startAttempts?: number;
  /** Quiet period on iopub that ends an execution (default 150 ms). */
  quietMs?: number;
  /** Heartbeat ping interval (default 1 000 ms). */
  heartbeatIntervalMs?: number;
  /** The kernel is declared dead after this long without a heartbeat reply (default 30 000). */
  heartbeatTimeoutMs?: number;
}

/** Options for {@linkcode Kernel.execute}. */
export interface ExecuteOptions {
  /** Reject with {@linkcode ExecuteTimeoutError} when no reply came after this long. */
  timeoutMs?: number;
  /**
   * Called for every iopub message of this execution, including ones that arrive late, and
   * for its `status` messages (busy, idle), which {@linkcode ExecuteResult.messages} leaves out.
   */
  onMessage?: (message: Message) => void;
  /**
   * Keep the messages in {@linkcode ExecuteResult.messages} (default true). A caller that
   * handles them in `onMessage` can say false, so that a cell printing millions of lines does
   * not hold them all in memory.
   */
  keepMessages?: boolean;
}

/** Outcome of one execution. */
export interface ExecuteResult {
  /** `msg_id` of the execute_request. */
  msgId: string;
  /** `status` of the execute_reply. */
  status: "ok" | "error" | "aborted";
  /** `execution_count` of the execute_reply. */
  executionCount: number | null;
  /** Content of the execute_reply. */
  reply: Record<string, unknown>;
  /** Every iopub message of this execution in arrival order; late ones are appended. */
  messages: Message[];
  /** `header.date` of the execute_reply (when the kernel sent it), if it had one. */
  replyDate?: string;
}

/** How a kernel process ended. */
export interface KernelExit {
  code: number | null;
  signal: string | null;
  /** Why the client considers the kernel dead. */
  reason: string;
}

/** The kernel process died (or stopped answering) while the client needed it. */
export class KernelDiedError extends Error {
  /** Exit details. */
  readonly exit: KernelExit;
  /**
   * @example
   * ```ts
   * import { KernelDiedError } from "./kernel.ts";
   * const e = new KernelDiedError({ code: 3, signal: null, reason: "exited with code 3" });
   * console.log(e.message); // "the kernel died (exited with code 3)"
   * ```
   */
  constructor(exit: KernelExit, context?: string) {
    super(`${context ? context + ": " : ""}the kernel died (${exit.reason})`);
    this.name = "KernelDiedError";
    this.exit = exit;
  }
}

/** An execution did not finish in time; the kernel may still be running it. */
export class ExecuteTimeoutError extends Error {
  /** The limit that was exceeded. */
  readonly timeoutMs: number;
  /** `msg_id` of the execution (its messages keep being routed). */
  readonly msgId: string;
  /** Messages of the execution gathered so far (the list keeps growing). */
  readonly messages: Message[];
  /**
   * @example
   * ```ts
   * import { ExecuteTimeoutError } from "./kernel.ts";
   * console.log(new ExecuteTimeoutError(2000, "id", []).message);
   * ```
   */
  constructor(timeoutMs: number, msgId: string, messages: Message[]) {
    super(`execution timed out after ${timeoutMs / 1000} s`);
    this.name = "ExecuteTimeoutError";
    this.timeoutMs = timeoutMs;
    this.msgId = msgId;
    this.messages = messages;
  }
}

/** Another process took one of the kernel's ports, or owns it: start again with new ports. */
class PortTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortTakenError";
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** Iopub bookkeeping for one request. */
interface Route {
  /** `msg_id` of the request. */
  msgId: string;
  messages: Message[];
  keep: boolean;
  onMessage?: (message: Message) => void;
  lastAt: number;
  idle: Deferred<void>;
  /** For flush probes: the request whose late output carries the probe's parent. */
  owner?: Route;
  /** For flush probes: resolves when the probe's marker arrives. */
  marker?: Deferred<void>;
  token?: string;
  /** Order of creation, to release the routes of requests older than a finished one. */
  seq: number;
  /** Whether its idle status arrived: a request still running keeps its route. */
  idleSeen: boolean;
}

const FLUSH_MARKER = "deno_notebook_runner_flush";

/**
 * Run silently in every new kernel: it exits once its parent (this process) is gone, so that a
 * client killed outright (SIGKILL, out of memory), which cannot clean up, leaves no kernel
 * behind. Linux only (it reads the parent's id from /proc); elsewhere it does nothing. The timer
 * is unref'd and the block declares nothing visible to the notebook's cells.
 */
const PARENT_WATCH = `{
  const parentOf = () => Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ")[1]);
  let parent = NaN;
  try { parent = parentOf(); } catch { /* not Linux */ }
  if (Number.isFinite(parent)) {
    Deno.unrefTimer(setInterval(() => {
      let now = parent;
      try { now = parentOf(); } catch { /* keep going */ }
      if (now !== parent) Deno.exit(1);
    }, 500));
  }
}`;
const PROBE_OWN_TYPES = new Set(["status", "execute_input", FLUSH_MARKER]);

// ---------------------------------------------------------------------------------------------
// Process-wide cleanup: kill every kernel on SIGINT/SIGTERM and on exit.

const live = new Set<Kernel>();
let cleanupInstalled = false;
let signalSeen: Deno.Signal | null = null;

function killAll(reason: string): void {
  for (const k of live) k.kill(reason);
}

/** How long a kernel may take to stop after the interrupt that SIGINT sends, before it is killed. */
const SIGINT_GRACE_MS = 3000;

/**
 * A repeat of the first signal within this time is the same Ctrl-C delivered twice: a terminal
 * signals the whole process group, and `deno task` forwards the signal to its child as well.
 */
const SAME_SIGNAL_MS = 1000;
let signalAt = 0;

function onSignal(signal: Deno.Signal) {
  if (signalSeen) {
    if (signal === signalSeen && performance.now() - signalAt < SAME_SIGNAL_MS) return;
    Deno.exit(signal === "SIGINT" ? 130 : 143); // second signal: leave now
  }
  signalSeen = signal;
  signalAt = performance.now();
  if (signal === "SIGINT") {
    // Ctrl-C: stop the running cell the way a frontend's Stop does, so that the caller can save
    // the partial results with the cell marked and shut the kernel down cleanly. The Deno 2.9
    // kernel cannot stop a cell that is waiting in an `await` (see docs/interactive.md, "What
    // Stop does"): such a kernel is killed after the grace period.
    for (const k of live) {
      k.interrupt(SIGINT_GRACE_MS).then((stopped) => {
        if (!stopped && k.alive) {
          k.kill(`killed: it did not stop within ${SIGINT_GRACE_MS / 1000} s of the interrupt`);
        }
      });
    }
  } else {
    killAll(`killed because this process received ${signal}`);
  }
  // Give the caller time to save partial results and shut down, then exit as the signal would.
  setTimeout(() => Deno.exit(signal === "SIGINT" ? 130 : 143), 15_000);
}
const onSigint = () => onSignal("SIGINT");
const onSigterm = () => onSignal("SIGTERM");
const onUnload = () => killAll("the client process exited");

/**
 * The signal (SIGINT or SIGTERM) this process received while kernels were running, or `null`.
 * On SIGINT every kernel is sent an interrupt_request (and killed when its cell has not stopped
 * 3 s later); on SIGTERM kernels are killed at once. The process exits 15 s later (at once on a
 * second signal), which leaves time to save partial results and shut the kernels down.
 *
 * @example
 * ```ts
 * import { receivedSignal } from "./kernel.ts";
 * if (receivedSignal()) console.error("interrupted");
 * ```
 */
export function receivedSignal(): Deno.Signal | null {
  return signalSeen;
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  Deno.addSignalListener("SIGINT", onSigint);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSigterm);
  globalThis.addEventListener("unload", onUnload);
}

function uninstallCleanup(): void {
  if (!cleanupInstalled || live.size > 0) return;
  cleanupInstalled = false;
  Deno.removeSignalListener("SIGINT", onSigint);
  if (Deno.build.os !== "windows") Deno.removeSignalListener("SIGTERM", onSigterm);
  globalThis.removeEventListener("unload", onUnload);
}

/** Keeps the last `limit` characters of a byte stream. */
async function tail(stream: ReadableStream<Uint8Array>, sink: { text: string }, limit = 8000) {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) {
      sink.text = (sink.text + decoder.decode(chunk, { stream: true })).slice(-limit);
    }
  } catch {
    // stream closed
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * A running Deno kernel and the client connected to it.
 *
 * @example
 * ```ts
 * import { Kernel } from "./kernel.ts";
 * await using kernel = await Kernel.start({ cwd: "notebooks" });
 * const r = await kernel.execute(`await Deno.jupyter.display({ "text/plain": "hi" }, { raw: true })`);
 * console.log(r.messages.map((m) => m.header.msg_type)); // ["execute_input", "display_data"]
 * ```
 */
export class Kernel {
  /** Process id of the kernel. */
  readonly pid: number;
  /** Path of the connection file (inside a private temp dir removed on shutdown). */
  readonly connectionFile: string;
  /** Content of the kernel_info_reply. */
  info: Record<string, unknown> = {};
  /** Milliseconds from spawn until the kernel answered on all channels (the last attempt). */
  startupMs = 0;
  /** Kernel processes it took to start: more than 1 when another process had taken a port. */
  startAttempts = 1;
  /** Messages dropped on receive, by reason (e.g. a bad HMAC signature). */
  readonly dropped: Record<DecodeFailure, number> = {
    "no-delimiter": 0,
    "too-few-frames": 0,
    "bad-signature": 0,
    "bad-json": 0,
  };
  /** Late messages that carried a flush probe's parent and were given to the previous request. */
  reattributed = 0;

  #conn: ConnectionInfo;
  #dir: string;
  #child: Deno.ChildProcess;
  #opts: Required<Omit<KernelOptions, "cwd" | "env" | "denoPath" | "argv" | "startAttempts">>;
  #session = crypto.randomUUID();
  #shell?: ZmtpSocket;
  #control?: ZmtpSocket;
  #stdin?: ZmtpSocket;
  #iopub?: ZmtpSocket;
  #hb?: ZmtpSocket;
  #routes = new Map<string, Route>();
  #routeSeq = 0;
  #replies = new Map<string, Deferred<Message>>();
  #orphans: Message[] = [];
  #exit: KernelExit | null = null;
  #died = deferred<KernelExit>();
  #closing = false;
  #queue: Promise<unknown> = Promise.resolve();
  #lastRoute: Route | null = null;
  #stderr = { text: "" };
  /** Settles when the kernel's stderr has ended. */
  #stderrEnded: Promise<void> = Promise.resolve();
  #stdout = { text: "" };
  #stop = new AbortController();
  /** Rejects with {@linkcode PortTakenError} when a channel turns out to be another's port. */
  #foreign = deferred<never>();
  #starting = true;

  private constructor(
    child: Deno.ChildProcess,
    conn: ConnectionInfo,
    dir: string,
    connectionFile: string,
    opts: KernelOptions,
  ) {
    this.#child = child;
    this.#conn = conn;
    this.#dir = dir;
    this.connectionFile = connectionFile;
    this.pid = child.pid;
    this.#opts = {
      startupTimeoutMs: opts.startupTimeoutMs ?? 60_000,
      quietMs: opts.quietMs ?? 150,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 30_000,
    };
    this.#died.promise.catch(() => {});
    tail(child.stdout, this.#stdout);
    this.#stderrEnded = tail(child.stderr, this.#stderr);
    child.status.then((status) => {
      const how = status.signal
        ? `killed by signal ${status.signal}`
        : `exited with code ${status.code}`;
      this.#markDead({ code: status.code, signal: status.signal, reason: how });
    });
  }

  /**
   * Starts a kernel and waits until it answers on shell and iopub.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * const kernel = await Kernel.start({ cwd: "." });
   * try {
   *   await kernel.execute("1 + 1");
   * } finally {
   *   await kernel.shutdown();
   * }
   * ```
   */
  static async start(options: KernelOptions = {}): Promise<Kernel> {
    const attempts = options.startAttempts ?? 5;
    const conflicts: string[] = [];
    for (let attempt = 1;; attempt++) {
      const started = await Kernel.#startOnce(options);
      if (started instanceof Kernel) {
        started.startAttempts = attempt;
        return started;
      }
      conflicts.push(`attempt ${attempt}: ${started.message}`);
      if (attempt >= attempts) {
        throw new Error(
          `could not start the Deno kernel: in each of ${attempts} attempts another process ` +
            `took one of its ports first (${conflicts.join("; ")})`,
        );
      }
    }
  }

  /** One attempt with fresh ports: the kernel, or why another process had one of its ports. */
  static async #startOnce(options: KernelOptions): Promise<Kernel | PortTakenError> {
    const conn = newConnectionInfo();
    const dir = await Deno.makeTempDir({ prefix: "deno-kernel-" });
    const file = join(dir, "connection.json");
    await Deno.writeTextFile(file, JSON.stringify(conn), { mode: 0o600 });
    const started = performance.now();
    let child: Deno.ChildProcess;
    try {
      const argv = (options.argv ?? [
        options.denoPath ?? Deno.execPath(),
        "jupyter",
        "--kernel",
        "--conn",
        "{connection_file}",
      ]).map((a) => a.replaceAll("{connection_file}", file));
      // A terminal's Ctrl-C reaches the whole process group, and SIGINT kills (or, started by
      // Jupyter, hangs) the Deno kernel: it ignores SIGINT, so that this client can stop the
      // cell by message instead. `exec` keeps the process id; ignored signals survive it.
      const [cmd, ...args] = Deno.build.os === "windows"
        ? argv
        : ["/bin/sh", "-c", 'trap "" INT; exec "$0" "$@"', ...argv];
      child = new Deno.Command(cmd, {
        args,
        cwd: options.cwd,
        env: options.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    const kernel = new Kernel(child, conn, dir, file, options);
    live.add(kernel);
    installCleanup();
    try {
      await kernel.#connect();
    } catch (e) {
      // Let a dying kernel's stderr be read to its end: it says why it died.
      if (!(e instanceof PortTakenError)) {
        await withTimeout(Promise.all([kernel.#child.status, kernel.#stderrEnded]), 1000, null);
      }
      const detail = kernel.#stderr.text.trim();
      // Killed, not asked: its control port may be another kernel's, which must get nothing.
      kernel.kill("it failed to start");
      await kernel.shutdown();
      if (e instanceof PortTakenError) return e;
      // The Deno 2.9 kernel binds its five ports at start and dies of the first one taken.
      const inUse = /AddrInUse: [^\n]*/.exec(stripAnsi(detail));
      if (inUse) {
        return new PortTakenError(`the kernel could not bind a port (${inUse[0]})`);
      }
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`could not start the Deno kernel: ${msg}${detail ? `\n${detail}` : ""}`);
    }
    kernel.#starting = false;
    kernel.startupMs = Math.round(performance.now() - started);
    kernel.#heartbeatLoop();
    await kernel.#request(kernel.#shell, "execute_request", {
      code: PARENT_WATCH,
      silent: true,
      store_history: false,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: false,
    }, 10_000);
    return kernel;
  }

  /**
   * Stream repairs on the kernel's sockets: messages recovered after another message was
   * written into their middle, and stretches skipped because they held no valid message (see
   * `_zmtp.ts`; the Deno 2.9 kernel does not serialize its iopub writes).
   */
  get streamRepairs(): { repaired: number; skipped: number } {
    const sockets = [this.#shell, this.#control, this.#stdin, this.#iopub];
    return {
      repaired: sockets.reduce((n, s) => n + (s?.repaired ?? 0), 0),
      skipped: sockets.reduce((n, s) => n + (s?.skipped ?? 0), 0),
    };
  }

  /**
   * Messages lost so far: dropped on receive (by reason in {@linkcode Kernel.dropped}) plus
   * stretches of the stream skipped because they held no verifiable message (e.g. a forged or
   * corrupted signature). Anything above zero means outputs may be missing.
   */
  get lostMessages(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0) + this.streamRepairs.skipped;
  }

  /** Whether the kernel process is running and answering. */
  get alive(): boolean {
    return this.#exit === null;
  }

  /** Why the kernel is dead, or `null` while it is alive. */
  get exit(): KernelExit | null {
    return this.#exit;
  }

  /** Recent stderr of the kernel process (for error messages). */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** Iopub messages whose parent was none of this client's requests (kept for debugging). */
  get orphans(): readonly Message[] {
    return this.#orphans;
  }

  /**
   * Connects the five channels and waits until the kernel answers with this client's key on
   * shell, control and iopub. The only request sent before that is kernel_info (it reads
   * nothing and changes nothing), so a kernel on a port taken by another process never gets
   * code. A channel whose first message is signed with another key, or whose peer closes the
   * connection, belongs to another process: that rejects with {@linkcode PortTakenError}.
   */
  async #connect(): Promise<void> {
    const { ip, key } = this.#conn;
    const deadline = Date.now() + this.#opts.startupTimeoutMs;
    this.#foreign.promise.catch(() => {});
    const connect = (channel: string, type: ZmtpSocketType) => {
      const port = this.#conn[`${channel}_port` as "shell_port"];
      let trusted = false;
      const verify = (frames: Uint8Array[]) => {
        const ok = verifySignature(key, frames);
        if (ok) trusted = true;
        else if (!trusted && this.#starting) {
          this.#foreign.reject(
            new PortTakenError(
              `its ${channel} port ${port} answered with a message signed with another key ` +
                "(another kernel has that port)",
            ),
          );
        }
        return ok;
      };
      return ZmtpSocket.connect(ip, port, type, {
        timeoutMs: this.#opts.startupTimeoutMs,
        signal: this.#stop.signal,
        verify: channel === "hb" ? undefined : verify,
      });
    };
    const died = this.#diedError("while starting");
    const foreign = this.#foreign.promise;
    // Each socket is kept as soon as it connects, so that shutdown closes it whatever fails.
    await Promise.race([
      Promise.all([
        connect("iopub", "SUB").then((s) => this.#iopub = s),
        connect("shell", "DEALER").then((s) => this.#shell = s),
        connect("control", "DEALER").then((s) => this.#control = s),
        connect("stdin", "DEALER").then((s) => this.#stdin = s),
        connect("hb", "REQ").then((s) => this.#hb = s),
      ]),
      died,
      foreign,
    ]);
    const shell = this.#shell!;
    const control = this.#control!;
    this.#readLoop(this.#iopub!, (m) => this.#onIopub(m));
    this.#readLoop(shell, (m) => this.#onReply(m));
    this.#readLoop(control, (m) => this.#onReply(m));
    this.#readLoop(this.#stdin!, (m) => this.#onStdin(m));
    // The subscription travels separately from requests: repeat kernel_info until its status
    // messages show up on iopub, which proves iopub delivers.
    const channels = () => ({
      iopub: this.#iopub,
      shell,
      control,
      stdin: this.#stdin,
      hb: this.#hb,
    });
    const closed = () => Object.values(channels()).some((socket) => socket?.closed);
    let info: Message | null = null;
    while (!info && !closed()) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the kernel");
      const msg = this.#message("kernel_info_request", {});
      const route = this.#route(msg.header.msg_id);
      const reply = this.#expectReply(msg.header.msg_id);
      await shell.send(encodeMessage(key, msg)).catch(() => {});
      info = await Promise.race([
        Promise.all([reply, route.idle.promise]).then(([r]) => r),
        delay(500, this.#stop.signal).then(() => null),
        died,
        foreign,
      ]);
    }
    // Control answers kernel_info too: proof that control is this kernel's as well.
    const onControl = this.#message("kernel_info_request", {});
    const controlReply = this.#expectReply(onControl.header.msg_id);
    await control.send(encodeMessage(key, onControl)).catch(() => {});
    const controlOk = closed() ? null : await Promise.race([
      withTimeout(controlReply, Math.max(0, deadline - Date.now()), null),
      died,
      foreign,
    ]);
    // Having answered, the kernel holds all five ports (it binds them at start). A socket that
    // connected before that reached another process, which has closed it since.
    for (const [channel, socket] of Object.entries(channels())) {
      if (!socket?.closed) continue;
      await Promise.race([delay(500), died]); // a dying kernel closes them too: say so
      const port = this.#conn[`${channel}_port` as "shell_port"];
      throw new PortTakenError(`its ${channel} port ${port} was held by another process`);
    }
    if (!info || !controlOk) throw new Error("timed out waiting for the kernel's control channel");
    this.info = info.content;
    this.#routes.clear(); // the kernel_info requests' stragglers need no route
  }

  async #readLoop(socket: ZmtpSocket, handle: (m: Message) => void): Promise<void> {
    while (true) {
      const raw = await socket.receive();
      if (raw === null) return;
      // The socket delivers only messages that passed verifySignature (#connect): no second HMAC.
      const decoded = decodeMessage(this.#conn.key, raw, { verified: true });
      if (!decoded.ok) {
        this.dropped[decoded.reason]++;
        continue;
      }
      handle(decoded.message);
    }
  }

  #message(msgType: string, content: Record<string, unknown>): Message {
    return {
      header: makeHeader(msgType, this.#session),
      parent_header: {},
      metadata: {},
      content,
      buffers: [],
    };
  }

  #route(msgId: string, onMessage?: (m: Message) => void, keep = true): Route {
    const route: Route = {
      msgId,
      messages: [],
      keep,
      onMessage,
      lastAt: performance.now(),
      idle: deferred(),
      seq: this.#routeSeq++,
      idleSeen: false,
    };
    route.idle.promise.then(() => route.idleSeen = true);
    this.#routes.set(msgId, route);
    return route;
  }

  /**
   * Releases the routes of requests made before `newest` that went idle (and `newest`'s own
   * older flush probes), except `keep`: once a later request has finished, no output of theirs
   * can still be in flight. What they collected stays with whoever holds their results.
   */
  #release(newest: Route, keep: Route): void {
    for (const [id, route] of this.#routes) {
      if (route === newest || route === keep || route.seq >= newest.seq) continue;
      if (route.idleSeen || route.owner === keep) this.#routes.delete(id);
    }
  }

  /**
   * Requests whose iopub messages are still routed to them. It stays small on a long-lived
   * kernel (the last execution, its flush probe, any still running); exposed for tests.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * await using kernel = await Kernel.start();
   * for (let i = 0; i < 10; i++) await kernel.execute(`${i}`);
   * console.log(kernel.routedRequests); // 2: the last execution and its flush probe
   * ```
   */
  get routedRequests(): number {
    return this.#routes.size;
  }

  #expectReply(msgId: string): Promise<Message> {
    const d = deferred<Message>();
    this.#replies.set(msgId, d);
    return d.promise;
  }

  #deliver(route: Route, message: Message): void {
    if (route.keep) route.messages.push(message);
    route.lastAt = performance.now();
    this.#notify(route, message);
  }

  #notify(route: Route, message: Message): void {
    try {
      route.onMessage?.(message);
    } catch {
      // a faulty callback must not break routing
    }
  }

  #onIopub(message: Message): void {
    const parent = message.parent_header?.msg_id;
    const route = parent ? this.#routes.get(parent) : undefined;
    if (!route) {
      this.#orphans.push(message);
      if (this.#orphans.length > 1000) this.#orphans.shift();
      return;
    }
    const type = message.header.msg_type;
    if (route.owner) {
      // A flush probe: its own messages mark progress, anything else is late output of the
      // request before it (the kernel tags output with the parent current at publish time).
      route.lastAt = performance.now();
      if (type === FLUSH_MARKER && message.content.token === route.token) {
        route.marker?.resolve();
      } else if (type === "status") {
        if (message.content.execution_state === "idle") route.idle.resolve();
      } else if (!PROBE_OWN_TYPES.has(type)) {
        this.reattributed++;
        // Re-parented, so that every message of an execution names it as its parent; the
        // probe it was published under stays in the metadata.
        this.#deliver(route.owner, {
          ...message,
          parent_header: { ...message.parent_header, msg_id: route.owner.msgId },
          metadata: { ...message.metadata, published_under: route.msgId },
        });
      }
      return;
    }
    if (type === "status") {
      route.lastAt = performance.now();
      if (message.content.execution_state === "idle") route.idle.resolve();
      this.#notify(route, message);
      return;
    }
    this.#deliver(route, message);
  }

  #onReply(message: Message): void {
    const parent = message.parent_header?.msg_id;
    if (!parent) return;
    this.#replies.get(parent)?.resolve(message);
    this.#replies.delete(parent); // answered: a long-lived kernel keeps no replies
  }

  #onStdin(message: Message): void {
    // Executions are sent with allow_stdin: false; answer anything else with an empty line.
    if (message.header.msg_type !== "input_request" || !this.#stdin) return;
    const reply = this.#message("input_reply", { value: "" });
    reply.parent_header = message.header;
    this.#stdin.send(encodeMessage(this.#conn.key, reply)).catch(() => {});
  }

  async #heartbeatLoop(): Promise<void> {
    let lastOk = performance.now();
    const signal = this.#stop.signal;
    while (!signal.aborted && this.alive && this.#hb && !this.#hb.closed) {
      const hb = this.#hb;
      const sent = hb.send([new TextEncoder().encode("ping")]).then(() => hb.receive());
      const answer = await withTimeout(sent.catch(() => null), this.#opts.heartbeatIntervalMs, 0);
      if (answer) {
        lastOk = performance.now();
        await delay(this.#opts.heartbeatIntervalMs, signal);
      } else if (answer === null) {
        break; // socket closed: the process exit (or shutdown) tells the rest
      }
      if (performance.now() - lastOk > this.#opts.heartbeatTimeoutMs && !signal.aborted) {
        this.kill(`no heartbeat for ${Math.round(this.#opts.heartbeatTimeoutMs / 1000)} s`);
        break;
      }
    }
  }

  #markDead(exit: KernelExit): void {
    if (this.#exit) return;
    this.#exit = exit;
    this.#died.resolve(exit);
  }

  #diedError(context?: string): Promise<never> {
    return this.#died.promise.then((exit) => {
      throw new KernelDiedError(exit, context);
    });
  }

  /** Sends a request on shell or control and waits for its reply (or the kernel's death). */
  async #request(
    socket: ZmtpSocket | undefined,
    msgType: string,
    content: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Message | null> {
    if (!socket || !this.alive) return null;
    const msg = this.#message(msgType, content);
    const reply = this.#expectReply(msg.header.msg_id);
    await socket.send(encodeMessage(this.#conn.key, msg)).catch(() => {});
    return await withTimeout(
      Promise.race([reply, this.#died.promise.then(() => null)]),
      timeoutMs,
      null,
    );
  }

  /**
   * Executes code and resolves once all of its output has arrived.
   *
   * Rejects with {@linkcode KernelDiedError} when the kernel dies first, and with
   * {@linkcode ExecuteTimeoutError} when `timeoutMs` passes without a reply (the kernel keeps
   * running the code: call {@linkcode Kernel.interrupt} or {@linkcode Kernel.kill}).
   * Executions are queued: one runs at a time.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * await using kernel = await Kernel.start();
   * const r = await kernel.execute(`console.log("a"); 42`);
   * // r.messages: stream "a\n", then execute_result {"text/plain": "42"}
   * ```
   */
  execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const run = this.#queue.then(() => this.#execute(code, options));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #execute(code: string, options: ExecuteOptions): Promise<ExecuteResult> {
    if (!this.alive) throw new KernelDiedError(this.#exit!, "cannot execute");
    const msg = this.#message("execute_request", {
      code,
      silent: false,
      store_history: true,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: false,
    });
    const msgId = msg.header.msg_id;
    const route = this.#route(msgId, options.onMessage, options.keepMessages ?? true);
    this.#lastRoute = route;
    const reply = this.#expectReply(msgId);
    try {
      await this.#shell!.send(encodeMessage(this.#conn.key, msg));
    } catch (e) {
      // A closed socket usually means the process just ended: report that when it did.
      await withTimeout(this.#died.promise, 2000, null);
      if (this.#exit) throw new KernelDiedError(this.#exit);
      throw e;
    }
    const done = Promise.all([reply, route.idle.promise]).then(([r]) => r);
    const died = this.#diedError();
    died.catch(() => {});
    let replyMsg: Message | "timeout";
    if (options.timeoutMs !== undefined) {
      replyMsg = await withTimeout(Promise.race([done, died]), options.timeoutMs, "timeout");
    } else {
      replyMsg = await Promise.race([done, died]);
    }
    if (replyMsg === "timeout") {
      throw new ExecuteTimeoutError(options.timeoutMs!, msgId, route.messages);
    }
    await this.#settle(route);
    const content = replyMsg.content;
    return {
      msgId,
      status: (content.status as ExecuteResult["status"]) ?? "error",
      executionCount: typeof content.execution_count === "number" ? content.execution_count : null,
      reply: content,
      messages: route.messages,
      ...(typeof replyMsg.header?.date === "string" ? { replyDate: replyMsg.header.date } : {}),
    };
  }

  /**
   * Waits until output of `route` can no longer be in flight: a flush probe round trip through
   * the kernel's output queue, then a quiet period on iopub. Then releases the routes of older
   * requests (see {@linkcode Kernel.routedRequests}).
   */
  async #settle(route: Route): Promise<void> {
    let probe: Route | undefined;
    if (this.alive) {
      const token = crypto.randomUUID();
      const msg = this.#message("execute_request", {
        code: `Deno.jupyter.broadcast(${JSON.stringify(FLUSH_MARKER)}, { token: "${token}" });`,
        silent: true,
        store_history: false,
        user_expressions: {},
        allow_stdin: false,
        stop_on_error: false,
      });
      probe = this.#route(msg.header.msg_id);
      probe.owner = route;
      probe.token = token;
      probe.marker = deferred();
      const reply = this.#expectReply(msg.header.msg_id);
      await this.#shell!.send(encodeMessage(this.#conn.key, msg)).catch(() => {});
      await withTimeout(
        Promise.race([
          Promise.all([reply, probe.idle.promise, probe.marker.promise]),
          this.#died.promise,
        ]),
        10_000,
        null,
      );
    }
    const quiet = this.#opts.quietMs;
    while (this.alive) {
      const since = performance.now() - route.lastAt;
      if (since >= quiet) break;
      await delay(quiet - since);
    }
    if (probe) this.#release(probe, route);
  }

  /**
   * Final drain: waits until output of the last execution can no longer be in flight. Call it
   * after the last cell; its messages keep being routed until a later execution has finished
   * (or {@linkcode Kernel.shutdown}).
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * await using kernel = await Kernel.start();
   * await kernel.execute(`setTimeout(() => console.log("late"), 50)`);
   * await kernel.drain();
   * ```
   */
  async drain(): Promise<void> {
    await this.#queue;
    if (this.#lastRoute) await this.#settle(this.#lastRoute);
  }

  /**
   * Interrupts the running execution (interrupt_request on control). Resolves `true` when the
   * execution then ended within `timeoutMs`.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * await using kernel = await Kernel.start();
   * const run = kernel.execute("while (true) {}", { timeoutMs: 1000 }).catch((e) => e);
   * await run; // ExecuteTimeoutError
   * console.log(await kernel.interrupt());
   * ```
   */
  async interrupt(timeoutMs = 3000): Promise<boolean> {
    const route = this.#lastRoute;
    const reply = await this.#request(this.#control, "interrupt_request", {}, timeoutMs);
    if (!reply || !route) return false;
    const ended = await withTimeout(
      Promise.race([route.idle.promise.then(() => true), this.#died.promise.then(() => false)]),
      timeoutMs,
      false,
    );
    return ended && this.alive;
  }

  /**
   * Kills the kernel process at once (SIGKILL) and marks it dead with `reason`.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * const kernel = await Kernel.start();
   * kernel.kill("no longer needed");
   * await kernel.shutdown(); // releases sockets and the temp dir
   * ```
   */
  kill(reason = "killed by the client"): void {
    this.#markDead({ code: null, signal: "SIGKILL", reason });
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }

  /**
   * Shuts the kernel down: shutdown_request on control, wait for the process to exit, kill it
   * if it does not, then close the sockets and remove the connection file. Idempotent.
   *
   * @example
   * ```ts
   * import { Kernel } from "./kernel.ts";
   * const kernel = await Kernel.start();
   * await kernel.shutdown();
   * console.log(kernel.alive); // false
   * ```
   */
  async shutdown(): Promise<void> {
    if (this.#closing) {
      await this.#child.status;
      return;
    }
    this.#closing = true;
    if (this.alive) {
      await this.#request(this.#control, "shutdown_request", { restart: false }, 2000);
    }
    this.#markDead({ code: null, signal: null, reason: "shut down by the client" });
    let exited = await withTimeout(this.#child.status, 3000, null);
    if (!exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* gone */ }
      exited = await withTimeout(this.#child.status, 2000, null);
    }
    if (!exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#child.status;
    }
    this.#stop.abort();
    for (const s of [this.#shell, this.#control, this.#stdin, this.#iopub, this.#hb]) s?.close();
    for (const d of this.#replies.values()) d.resolve(null as unknown as Message);
    this.#routes.clear();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    live.delete(this);
    uninstallCleanup();
  }

  /** Same as {@linkcode Kernel.shutdown}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
