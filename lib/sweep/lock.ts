/**
 * One process at a time per sweep folder: `sweep.lock` names the process that holds the folder
 * (process id, host, start time, command). It is created atomically (a hard link of a complete
 * file, which fails when the lock exists, also on NFS), so of two sweeps started together exactly
 * one gets the folder. A lock whose process is gone (same host, no such process, or another
 * process with its id) is taken over; a lock of another host is never judged from here.
 *
 * @example
 * ```ts
 * import { lockSweep } from "./lock.ts";
 * const lock = await lockSweep("sweeps/a", "deno task sweep nb.ipynb …");
 * try {
 *   // run the sweep
 * } finally {
 *   await lock.release();
 * }
 * ```
 * @module
 */
import { hostname } from "node:os";
import { join } from "node:path";

/** Name of the lock file in a sweep folder. */
export const LOCK_FILE = "sweep.lock";

/** What `sweep.lock` holds. */
export interface SweepLockHolder {
  /** Process id of the holder. */
  pid: number;
  /** Host it runs on. */
  host: string;
  /** When it took the folder (ISO 8601). */
  started: string;
  /** Its command line, for people. */
  command: string;
  /** Start time of the process in clock ticks since boot (Linux), to tell a reused pid. */
  pidStart?: number;
  /** Random: tells this lock from a later one of the same process. */
  token: string;
}

/** Another process holds the sweep folder. */
export class SweepLockedError extends Error {
  /** The holder, as its lock file says. */
  readonly holder: SweepLockHolder | undefined;
  /**
   * @example
   * ```ts
   * throw new SweepLockedError("sweeps/a", undefined);
   * ```
   */
  constructor(folder: string, holder: SweepLockHolder | undefined) {
    const who = holder
      ? `process ${holder.pid} on ${holder.host} since ${holder.started} (${holder.command})`
      : "another process (its lock file cannot be read)";
    super(
      `${folder} is in use by ${who}. Wait for it to end or stop it; if no sweep runs there ` +
        `any more, remove ${join(folder, LOCK_FILE)}.`,
    );
    this.name = "SweepLockedError";
    this.holder = holder;
  }
}

/** A held sweep folder. */
export interface SweepLock {
  /** The folder. */
  folder: string;
  /** What the lock file says. */
  holder: SweepLockHolder;
  /** The lock that was taken over because its process was gone, if one was. */
  tookOver?: SweepLockHolder;
  /** Removes the lock file (when it is still this lock's). Idempotent. */
  release(): Promise<void>;
}

/** Start time of a process in clock ticks since boot, from /proc (Linux); undefined elsewhere. */
function processStart(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), which ends at the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]); // field 22 of the whole line
  } catch {
    return undefined;
  }
}

/** Whether the holder's process is gone: only decidable on its own host. */
function gone(holder: SweepLockHolder): boolean {
  if (holder.host !== hostname() || Deno.build.os !== "linux") return false;
  const start = processStart(holder.pid);
  if (start === undefined) return true;
  return holder.pidStart !== undefined && start !== holder.pidStart;
}

async function readHolder(path: string): Promise<SweepLockHolder | undefined> {
  try {
    const holder = JSON.parse(await Deno.readTextFile(path));
    return typeof holder?.pid === "number" && typeof holder?.token === "string"
      ? holder
      : undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw e;
    return undefined;
  }
}

/** Creates `path` with `text` in one step; false when it exists already. */
async function createComplete(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(tmp, text, { createNew: true });
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    // No hard links here: an exclusive create, atomic too, though briefly empty.
    try {
      await Deno.writeTextFile(path, text, { createNew: true });
      return true;
    } catch (e2) {
      if (e2 instanceof Deno.errors.AlreadyExists) return false;
      throw e;
    }
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Moves a lock judged stale out of the way. The rename is atomic; when the file moved turns out
 * to be a newer lock (taken between the judgement and the rename), it is put back.
 */
async function breakStale(path: string, stale: SweepLockHolder): Promise<void> {
  const aside = `${path}.stale-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.rename(path, aside);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return; // someone else moved it
    throw e;
  }
  const moved = await readHolder(aside).catch(() => undefined);
  if (moved?.token !== stale.token) {
    await Deno.link(aside, path).catch(() => {}); // a newer lock: give it back
  }
  await Deno.remove(aside).catch(() => {});
}

/**
 * Takes the sweep folder for this process, or throws {@linkcode SweepLockedError} naming the
 * process that holds it. The folder must exist. The lock is removed by
 * {@linkcode SweepLock.release} and, as a last resort, when this process exits normally; a lock
 * left by a process killed outright is taken over by the next one on the same host.
 *
 * @example
 * ```ts
 * const lock = await lockSweep("sweeps/a", "deno task sweep status sweeps/a");
 * await lock.release();
 * ```
 */
export async function lockSweep(folder: string, command: string): Promise<SweepLock> {
  const path = join(folder, LOCK_FILE);
  const holder: SweepLockHolder = {
    pid: Deno.pid,
    host: hostname(),
    started: new Date().toISOString(),
    command,
    pidStart: processStart(Deno.pid),
    token: crypto.randomUUID(),
  };
  let tookOver: SweepLockHolder | undefined;
  for (let attempt = 1;; attempt++) {
    if (await createComplete(path, JSON.stringify(holder, null, 1) + "\n")) break;
    let other: SweepLockHolder | undefined;
    try {
      other = await readHolder(path);
    } catch {
      if (attempt < 10) continue; // released meanwhile: try again
    }
    if (!other || !gone(other) || attempt >= 10) throw new SweepLockedError(folder, other);
    await breakStale(path, other);
    tookOver = other;
  }
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    globalThis.removeEventListener("unload", onUnload);
    const now = await readHolder(path).catch(() => undefined);
    if (now?.token === holder.token) await Deno.remove(path).catch(() => {});
  };
  const onUnload = () => {
    if (released) return;
    released = true;
    try {
      const now = JSON.parse(Deno.readTextFileSync(path));
      if (now?.token === holder.token) Deno.removeSync(path);
    } catch {
      // gone already
    }
  };
  globalThis.addEventListener("unload", onUnload);
  return { folder, holder, tookOver, release };
}
