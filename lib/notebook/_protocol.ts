/**
 * Jupyter messaging protocol 5.3: message types, the ZeroMQ wire format with its
 * `<IDS|MSG>` delimiter, HMAC-SHA256 signatures, and connection files.
 *
 * Private helper of `kernel.ts`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

/** Protocol version spoken by this client. */
export const PROTOCOL_VERSION = "5.3";

/** The frame that separates routing identities from the message. */
export const DELIMITER = "<IDS|MSG>";

/** Header of a Jupyter message. */
export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
}

/** A decoded Jupyter message. */
export interface Message<C = Record<string, unknown>> {
  header: MessageHeader;
  /** The header of the request this message answers, or `{}`. */
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Uint8Array[];
}

/** Contents of a Jupyter connection file. */
export interface ConnectionInfo {
  transport: "tcp";
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: "hmac-sha256";
  kernel_name: string;
}

/** Why a received message was dropped. */
export type DecodeFailure = "no-delimiter" | "too-few-frames" | "bad-signature" | "bad-json";

/** Result of {@linkcode decodeMessage}. */
export type DecodeResult =
  | { ok: true; message: Message; identities: Uint8Array[] }
  | { ok: false; reason: DecodeFailure };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Signs the four JSON frames with HMAC-SHA256 and the given key; "" when the key is empty. */
export function sign(key: string, frames: Uint8Array[]): string {
  if (key === "") return "";
  // One update over the joined frames: each update is a call into the runtime, and a kernel
  // flooding output sends tens of thousands of messages (issue 14: 100,000 lines in ≤ 5 s).
  return createHmac("sha256", keyBytes(key)).update(joinFrames(frames)).digest("hex");
}

let lastKey: { text: string; bytes: Uint8Array } | undefined;

/** The key as bytes, converted once per key (a string key is re-encoded on every call). */
function keyBytes(key: string): Uint8Array {
  if (lastKey?.text !== key) lastKey = { text: key, bytes: Buffer.from(key) };
  return lastKey.bytes;
}

function joinFrames(frames: Uint8Array[]): Uint8Array {
  if (frames.length === 1) return frames[0];
  let size = 0;
  for (const f of frames) size += f.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** Builds a new message header. */
export function makeHeader(msgType: string, session: string): MessageHeader {
  return {
    msg_id: crypto.randomUUID(),
    session,
    username: "deno-notebook-runner",
    date: new Date().toISOString(),
    msg_type: msgType,
    version: PROTOCOL_VERSION,
  };
}

/** Encodes a message into wire frames (no identities: dealer sockets add none). */
export function encodeMessage(key: string, message: Message): Uint8Array[] {
  const frames = [
    encoder.encode(JSON.stringify(message.header)),
    encoder.encode(JSON.stringify(message.parent_header)),
    encoder.encode(JSON.stringify(message.metadata)),
    encoder.encode(JSON.stringify(message.content)),
  ];
  return [
    encoder.encode(DELIMITER),
    encoder.encode(sign(key, frames)),
    ...frames,
    ...message.buffers,
  ];
}

const DELIMITER_BYTES = encoder.encode(DELIMITER);

function isDelimiter(frame: Uint8Array): boolean {
  if (frame.length !== DELIMITER_BYTES.length) return false;
  for (let i = 0; i < frame.length; i++) if (frame[i] !== DELIMITER_BYTES[i]) return false;
  return true;
}

/** Compares a signature frame with the expected hex digest in constant time. */
function signatureMatches(frame: Uint8Array, expected: string): boolean {
  if (frame.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < frame.length; i++) diff |= frame[i] ^ expected.charCodeAt(i);
  return diff === 0;
}

function locate(key: string, raw: Uint8Array[], checkSignature: boolean): number | DecodeFailure {
  const at = raw.findIndex(isDelimiter);
  if (at < 0) return "no-delimiter";
  if (raw.length < at + 6) return "too-few-frames";
  if (checkSignature && key !== "") {
    if (!signatureMatches(raw[at + 1], sign(key, raw.slice(at + 2, at + 6)))) {
      return "bad-signature";
    }
  }
  return at;
}

/** Whether the frames hold a message whose HMAC signature is right (cheap: no JSON parsing). */
export function verifySignature(key: string, raw: Uint8Array[]): boolean {
  return typeof locate(key, raw, true) === "number";
}

/**
 * Decodes wire frames, verifying the signature unless `options.verified` says the frames already
 * passed {@linkcode verifySignature} (the kernel client's sockets check every message on arrival);
 * invalid messages are reported, not thrown.
 */
export function decodeMessage(
  key: string,
  raw: Uint8Array[],
  options: { verified?: boolean } = {},
): DecodeResult {
  const at = locate(key, raw, !options.verified);
  if (typeof at !== "number") return { ok: false, reason: at };
  const [header, parent, metadata, content] = raw.slice(at + 2, at + 6);
  try {
    return {
      ok: true,
      identities: raw.slice(0, at),
      message: {
        header: JSON.parse(decoder.decode(header)),
        parent_header: JSON.parse(decoder.decode(parent)),
        metadata: JSON.parse(decoder.decode(metadata)),
        content: JSON.parse(decoder.decode(content)),
        buffers: raw.slice(at + 6),
      },
    };
  } catch {
    return { ok: false, reason: "bad-json" };
  }
}

/** Where {@linkcode choosePorts} picks from when the system's ephemeral range leaves room. */
const PORT_FLOOR = 10_000;

/** The range the system takes outgoing connections' local ports from (Linux; else IANA's). */
function ephemeralRange(): [number, number] {
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const [low, high] = text.trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux
  }
  return [49152, 65535];
}

/**
 * The ports {@linkcode choosePorts} picks from: below the ephemeral range (so that no outgoing
 * connection of any process can hold one), or above it; `null` when neither leaves 1,000 ports.
 */
export function portRange(): [number, number] | null {
  const [low, high] = ephemeralRange();
  if (low - PORT_FLOOR >= 1000) return [PORT_FLOOR, low - 1];
  if (65535 - high >= 1000) return [high + 1, 65535];
  return null;
}

function randomBelow(n: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % n;
}

/**
 * Picks `count` distinct TCP ports that were free a moment ago: random ones in
 * {@linkcode portRange}, each checked by binding it (port 0 where the range is too small).
 * Another process can still take one before the kernel binds it: the kernel client detects that
 * and starts again with new ports. Random picks keep concurrent clients apart, and the range
 * keeps them away from the ports the system hands to outgoing connections.
 */
export function choosePorts(count: number, hostname = "127.0.0.1"): number[] {
  const range = portRange();
  const chosen = new Set<number>();
  for (let tries = 0; chosen.size < count && tries < 100 * count; tries++) {
    const port = range ? range[0] + randomBelow(range[1] - range[0] + 1) : 0;
    if (chosen.has(port)) continue;
    try {
      const listener = Deno.listen({ hostname, port });
      chosen.add((listener.addr as Deno.NetAddr).port);
      listener.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    }
  }
  if (chosen.size < count) {
    throw new Error(`found only ${chosen.size} of ${count} free TCP ports on ${hostname}`);
  }
  return [...chosen];
}

/** A fresh connection description with ports from {@linkcode choosePorts} and a random 256-bit key. */
export function newConnectionInfo(ip = "127.0.0.1"): ConnectionInfo {
  const [shell, iopub, stdin, control, hb] = choosePorts(5, ip);
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const key = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return {
    transport: "tcp",
    ip,
    shell_port: shell,
    iopub_port: iopub,
    stdin_port: stdin,
    control_port: control,
    hb_port: hb,
    key,
    signature_scheme: "hmac-sha256",
    kernel_name: "deno",
  };
}
