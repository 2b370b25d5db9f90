/**
 * Interrupt safety for lib's long calls (training, evaluation, the experiment, the shape sweep).
 *
 * **Why this exists.** The Deno Jupyter kernel stops a cell (Stop in a frontend, an
 * `interrupt_request`) with V8's `TerminateExecution`. Termination cannot be caught: no `catch`,
 * no `finally`, no `tf.tidy` clean-up runs. A training step stopped half-way leaves tfjs's engine
 * mid-step: tidy scopes open, `kernelDepth` above 0 (so the tape stays off and every later
 * `variableGrads` fails with "Cannot find a connection between any variable and the result of
 * the loss function"), a gradient tape half-recorded, and every tensor the step, the batches, the
 * optimizer and the models of the call had made still allocated. Measured on notebook 02: about
 * 390 tensors per Stop, and no training run worked in that kernel afterwards.
 *
 * A second effect: a cell stopped after its first `await` only reports that it ended once V8
 * garbage-collects the cell's orphaned promise (the kernel awaits it through the inspector, which
 * rejects with "Promise was collected"). Nothing allocates in a stopped kernel, so that took 36 s
 * to several minutes, or forever.
 *
 * **What it does.** Nothing can run at termination, so the work is done afterwards, by code that
 * does run: {@linkcode interruptSafe} wraps each long entry point. While one runs it
 *
 * - records every tensor and variable created during the call (and forgets those disposed);
 * - keeps a weak reference to a token that only the call's own pending continuation holds: once
 *   the call has been terminated, nothing can resume it, the token becomes garbage, and a garbage
 *   collection proves the call dead (a call that is merely waiting, on a GPU read, a file write
 *   or a callback, keeps its token alive and is never touched);
 * - runs a watchdog timer that, when the call has made no progress between two ticks, forces a
 *   garbage collection (at most a logarithmic number of times while it stays idle) and runs the
 *   repair below when that collection took the token. After a collection V8 makes by itself, a
 *   `FinalizationRegistry` callback on the token runs the repair instead;
 * - holds the promise it hands to the caller until the call finishes or is repaired. The stopped
 *   cell awaits that promise, so the cell's own promise, whose collection is what makes the
 *   kernel end the cell, stays alive until the repair has run; the repair then collects garbage
 *   once more, and the cell ends within a fraction of a second. So the next cell always finds
 *   the engine repaired. (Without this, a collection V8 made by itself took the token and the
 *   cell's promise together: the kernel ended the cell, and a cell already waiting could run
 *   before the `FinalizationRegistry` callback; it then read the stopped call's tensors.)
 *
 * The repair of a dead call first finishes the engine operation the Stop cut in half, if any (a
 * tensor's registration or disposal, a `Variable.assign`: see `_engine_in_flight.ts`), then
 * restores the engine to its state at the call's start (scopes opened since are closed,
 * `kernelDepth`, `gradientDepth`, the tape, the data-move stack and profiling reset; the tape's
 * saved tensors freed) and disposes every tensor the call created that is still alive, except
 * those its caller said to keep (the user's own model weights, for `train`).
 * The same checks run on entry of every wrapped call and in {@linkcode recoverEngine}, so the next
 * training run works even where no timer could run. A call stopped in its synchronous part (the
 * shape sweep) is found dead by a zero-delay timer: timers only run on an empty stack.
 *
 * Limits: the calls are meant to be awaited one at a time; a second call started while another
 * still runs is counted as part of the first. Tensors a user's callback (`onStep`, `onEpoch`)
 * created during the call and stored elsewhere are reclaimed with the call. State outside tfjs's
 * engine that a stopped call left behind is not repaired here: the multi-threaded wasm build's
 * thread pool, locked by a Stop inside one of its kernels, and tfjs-layers' private name-scope
 * stack (models built later get prefixed weight names) are two (see docs/interactive.md,
 * "Stopping a cell").
 *
 * @example
 * ```ts
 * import { interruptSafe, recoverEngine } from "./engine_repair.ts";
 * const result = await interruptSafe("myLongCall", async () => {
 *   // ... tensors, awaits, tidy scopes ...
 *   return 42;
 * });
 * recoverEngine(); // after a Stop outside lib's calls: { deadCalls: [], tensorsReclaimed: 0, … }
 * ```
 * @module
 */
import { tf } from "./tf.ts";
import { beginOp, clearInFlight, endOp, settleInFlight } from "./_engine_in_flight.ts";
import v8 from "node:v8";
import vm from "node:vm";

/** tfjs-core 4.22's engine fields this module reads and restores (see tfjs-core's engine.ts). */
interface EngineState {
  scopeStack: { id: number; name: string; track: tf.Tensor[] }[];
  activeScope: { id: number; name: string; track: tf.Tensor[] } | null | undefined;
  nextScopeId: number;
  kernelDepth: number;
  gradientDepth: number;
  activeTape: { saved?: tf.Tensor[] }[] | null | undefined;
  numDataMovesStack: number[];
  profiling: boolean;
}

interface EngineInternals {
  state: EngineState;
  trackTensor(t: tf.Tensor, backend: unknown): void;
  makeVariable(...args: unknown[]): tf.Variable;
  disposeTensor(t: tf.Tensor): void;
  disposeVariable(v: tf.Variable): void;
}

/** What one repair did. */
export interface EngineRepair {
  /** Names of the lib calls found stopped (terminated) and cleaned up after. */
  deadCalls: string[];
  /** Tensors and variables disposed (those the stopped calls had created and left). */
  tensorsReclaimed: number;
  /**
   * Engine fields that were found mid-step and restored (`kernelDepth 3→0`, …), and the engine
   * operation the Stop cut in half, finished (`assign of conv1/kernel finished`).
   */
  restored: string[];
}

/** Options of {@linkcode interruptSafe}. */
export interface InterruptSafeOptions {
  /**
   * Tensors created during the call that must survive when the call is stopped (read at repair
   * time): e.g. weights of the caller's own model built lazily during the call.
   */
  keep?: () => Iterable<tf.Tensor>;
}

/** One outermost wrapped call in progress. */
interface Call {
  name: string;
  /** Tensors and variables created during the call and not yet disposed. */
  tensors: Set<tf.Tensor>;
  keep?: () => Iterable<tf.Tensor>;
  /** Held strongly only by the call's own continuation (see the module doc). */
  token: WeakRef<object>;
  /**
   * The promise handed to the caller, held until the call finishes or is repaired: the stopped
   * cell awaits it, so the kernel cannot end that cell before the repair (see the module doc).
   */
  outer?: Promise<unknown>;
  /** The newest tensor id recorded. */
  lastId: number;
  /** True while the call's synchronous part runs. */
  inSyncPart: boolean;
  /** Zero-delay timer that finds a call stopped in its synchronous part. */
  syncCheck?: ReturnType<typeof setTimeout>;
  /** Engine state at the call's start. */
  baseline: {
    firstScopeId: number;
    kernelDepth: number;
    gradientDepth: number;
    dataMoves: number;
    profiling: boolean;
  };
}

/** The watchdog's period. */
const TICK_MS = 150;

let current: Call | undefined;
let created = 0; // tensors made while a call runs: the watchdog's sign of progress
let watchdog: ReturnType<typeof setInterval> | undefined;
let lastRepair: EngineRepair | undefined;
let hooked = false;

const engine = () => tf.engine() as unknown as EngineInternals;

/** Hooks tfjs's engine once, so that tensors made during a call are recorded. */
function hook(): void {
  if (hooked) return;
  hooked = true;
  const e = engine();
  const { trackTensor, makeVariable, disposeTensor, disposeVariable } = e;
  // Variables pass through trackTensor on every assign too: they are recorded at creation only.
  // Each noted operation ends in a `finally`, on the error path too (a throw is no cut): only a
  // Stop skips it, which must leave the operation noted.
  e.trackTensor = function (this: EngineInternals, t, backend) {
    if (!current) return trackTensor.call(this, t, backend);
    const n = beginOp("track", t, undefined, backend);
    try {
      trackTensor.call(this, t, backend);
      if (current && !(t instanceof tf.Variable)) record(t);
    } finally {
      endOp(n);
    }
  };
  e.makeVariable = function (this: EngineInternals, ...args) {
    const v = makeVariable.apply(this, args);
    if (current) record(v);
    return v;
  };
  // Disposed first, forgotten second: a Stop between the two leaves a disposed tensor in the
  // record (skipped), never a live one out of it. One cut inside the engine's part is noted
  // (_engine_in_flight.ts), and the repair finishes it instead of disposing it twice.
  e.disposeTensor = function (this: EngineInternals, t) {
    if (!current) return disposeTensor.call(this, t);
    const n = beginOp("dispose", t);
    try {
      disposeTensor.call(this, t);
    } finally {
      endOp(n);
    }
    if (current && !(t instanceof tf.Variable)) current.tensors.delete(t);
  };
  e.disposeVariable = function (this: EngineInternals, v) {
    disposeVariable.call(this, v);
    current?.tensors.delete(v);
  };
  // An assignment disposes the old value, then registers the new one: also noted. One whose
  // value does not match (shape, dtype) throws before any of that.
  const proto = tf.Variable.prototype;
  const assign = proto.assign;
  proto.assign = function (this: tf.Variable, value: tf.Tensor) {
    if (!current) return assign.call(this, value);
    const n = beginOp("assign", this, value);
    try {
      assign.call(this, value);
    } finally {
      endOp(n);
    }
  };
}

function record(t: tf.Tensor): void {
  // A collection between a call's stop and this tensor proves the call dead: what is made now
  // belongs to the user's next cell, not to it.
  if (current!.token.deref() === undefined) return;
  current!.tensors.add(t);
  if (t.id > current!.lastId) current!.lastId = t.id;
  created++;
}

let gcFunction: (() => void) | null | undefined;

/**
 * V8's `gc()`: `--expose-gc` set at run time applies to contexts created afterwards, so a fresh
 * `node:vm` context has it. Null where that is not possible.
 */
function collectGarbage(): boolean {
  if (gcFunction === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      gcFunction = vm.runInNewContext("gc") as () => void;
    } catch {
      gcFunction = null;
    }
  }
  gcFunction?.();
  return gcFunction !== null;
}

/** Whether `call` can no longer resume (its token was collected). Call after a collection. */
function isDead(call: Call): boolean {
  return call.token.deref() === undefined;
}

// A collection V8 makes by itself is seen here, in a task some time after it; the stopped cell
// is still running then (its promise is held through `Call.outer`), so no other cell came first.
const finalizer = new FinalizationRegistry<Call>((call) => {
  if (current === call) repairDead(call);
});

function startWatchdog(): void {
  if (watchdog !== undefined) return;
  let seen = created, idleTicks = 0, last = performance.now();
  const timer = setInterval(() => {
    if (!current) {
      stopWatchdog();
      return;
    }
    // Progress: new tensors, or a late tick (the thread was busy: file reads, decoding…). A
    // stopped call's kernel is idle, and its ticks come on time.
    const now = performance.now(), late = now - last > 2 * TICK_MS;
    last = now;
    if (created !== seen || late) {
      seen = created;
      idleTicks = 0;
      return;
    }
    idleTicks++;
    // After 3, 6, 12, 24… idle ticks: a call that waits long (a slow callback, a GPU) costs a
    // few collections only.
    const n = idleTicks / 3;
    if (!Number.isInteger(n) || (n & (n - 1)) !== 0) return;
    collectGarbage();
    last = performance.now(); // the collection's own time is not activity
    if (isDead(current)) repairDead(current);
  }, TICK_MS);
  // The watchdog must never keep a script alive.
  Deno.unrefTimer(timer);
  watchdog = timer;
}

function stopWatchdog(): void {
  if (watchdog !== undefined) clearInterval(watchdog);
  watchdog = undefined;
}

/** Restores the engine to `call`'s baseline and disposes what the call left. */
function repairDead(call: Call): EngineRepair {
  if (current === call) current = undefined;
  if (call.syncCheck !== undefined) clearTimeout(call.syncCheck);
  // First, before anything is disposed: the engine operation the Stop cut in half, if any.
  const finished = settleInFlight((t) => call.tensors.add(t));
  // A Stop between a tensor's creation and its recording leaves it only in its scope: the
  // newest tensor there, right after the last one recorded (later ones are the user's).
  const restored = restoreEngine(call.baseline, (t) => {
    if (t.id <= call.lastId + 1) call.tensors.add(t);
  });
  const keep = new Set(call.keep?.() ?? []);
  let reclaimed = 0;
  for (const t of call.tensors) {
    if (t.isDisposed || keep.has(t)) continue;
    t.dispose();
    reclaimed++;
  }
  call.tensors.clear();
  if (!current) stopWatchdog();
  lastRepair = {
    deadCalls: [call.name],
    tensorsReclaimed: reclaimed,
    restored: [...finished, ...restored],
  };
  if (call.outer !== undefined) {
    // Only now may the stopped cell end: a collection lets the kernel see its promise gone.
    call.outer = undefined;
    collectGarbage();
  }
  return lastRepair;
}

/**
 * Puts the engine's bookkeeping back to `base`; returns what differed. The tensors tracked by the
 * scopes it closes are passed to `orphan`.
 */
function restoreEngine(base: Call["baseline"], orphan?: (t: tf.Tensor) => void): string[] {
  const s = engine().state;
  const restored: string[] = [];
  let closed = 0;
  // Scopes opened during the stopped call are on top of the stack; their tensors are the
  // call's and are disposed with it.
  while (s.scopeStack.length > 0 && s.scopeStack[s.scopeStack.length - 1].id >= base.firstScopeId) {
    for (const t of s.scopeStack.pop()!.track) orphan?.(t);
    closed++;
  }
  const top = s.scopeStack.length === 0 ? null : s.scopeStack[s.scopeStack.length - 1];
  if (closed > 0 || (s.activeScope ?? null) !== top) {
    restored.push(`scopes: ${closed} closed`);
    s.activeScope = top;
  }
  if (s.kernelDepth !== base.kernelDepth) {
    restored.push(`kernelDepth ${s.kernelDepth}→${base.kernelDepth}`);
    s.kernelDepth = base.kernelDepth;
  }
  if (s.gradientDepth !== base.gradientDepth) {
    restored.push(`gradientDepth ${s.gradientDepth}→${base.gradientDepth}`);
    s.gradientDepth = base.gradientDepth;
  }
  if (s.gradientDepth === 0 && s.activeTape != null) {
    // The saved tensors are kept clones that only the backward pass would have freed.
    for (const node of s.activeTape) for (const t of node.saved ?? []) t.dispose();
    if (s.activeTape.length > 0) restored.push(`tape: ${s.activeTape.length} nodes dropped`);
    s.activeTape = null;
  }
  if (s.numDataMovesStack.length !== base.dataMoves) {
    restored.push(`numDataMovesStack ${s.numDataMovesStack.length}→${base.dataMoves}`);
    s.numDataMovesStack.length = base.dataMoves;
  }
  if (s.profiling && !base.profiling) {
    restored.push("profiling off");
    s.profiling = false;
  }
  return restored;
}

const TOP_LEVEL = {
  firstScopeId: 0,
  kernelDepth: 0,
  gradientDepth: 0,
  dataMoves: 0,
  profiling: true,
};

/**
 * Finds lib calls that were stopped (a garbage collection proves it), restores tfjs's engine and
 * disposes the tensors they left. With no lib call in progress it also resets what can never be
 * mid-way between cells (`kernelDepth`, `gradientDepth`, the tape, the data-move stack), which a
 * Stop in the user's own tfjs code leaves behind; the user's own open `tf.tidy` scopes are left
 * alone, as their tensors may be in use. Lib's long calls do this by themselves on entry; call it
 * at the top level of a cell, never inside `tf.tidy`.
 *
 * @example
 * ```ts
 * const { deadCalls, tensorsReclaimed, restored } = recoverEngine();
 * ```
 */
export function recoverEngine(): EngineRepair {
  const result: EngineRepair = { deadCalls: [], tensorsReclaimed: 0, restored: [] };
  if (current) {
    collectGarbage();
    if (current.inSyncPart || isDead(current)) {
      const r = repairDead(current);
      result.deadCalls.push(...r.deadCalls);
      result.tensorsReclaimed += r.tensorsReclaimed;
      result.restored.push(...r.restored);
    }
  }
  if (!current) {
    // firstScopeId = ∞: no scope is attributed; profiling = true: a running tf.profile stays.
    result.restored.push(...restoreEngine({ ...TOP_LEVEL, firstScopeId: Infinity }));
  }
  if (result.deadCalls.length > 0 || result.restored.length > 0) lastRepair = result;
  return result;
}

/**
 * The last repair made after a stopped call (by a wrapped call's entry, the watchdog or
 * {@linkcode recoverEngine}), if any.
 *
 * @example
 * ```ts
 * lastEngineRepair()?.tensorsReclaimed;
 * ```
 */
export function lastEngineRepair(): EngineRepair | undefined {
  return lastRepair;
}

/**
 * Runs one of lib's long calls so that a Stop (V8 termination) during it leaves a working engine
 * and no tensors behind (see the module doc). Calls nested in a running one count as part of it.
 * Works for synchronous and asynchronous `fn`.
 *
 * @example
 * ```ts
 * const rows = interruptSafe("shapeGrid", () => gridRows());
 * const results = await interruptSafe("train", () => trainLoop(), { keep: () => userWeights });
 * ```
 */
export function interruptSafe<T>(name: string, fn: () => T, options: InterruptSafeOptions = {}): T {
  hook();
  // A stopped call's cell only ends after a collection that also takes the call's token, so a
  // token still alive here means a running call (no collection is forced: nested calls are
  // frequent and a collection is not free).
  if (current && (current.inSyncPart || current.token.deref() !== undefined)) {
    // Nested in (or concurrent with) a running call: part of it.
    return fn();
  }
  if (current) repairDead(current);
  else recoverEngine();
  const s = engine().state;
  const token = {};
  const call: Call = {
    name,
    tensors: new Set(),
    keep: options.keep,
    token: new WeakRef(token),
    lastId: -1,
    inSyncPart: true,
    baseline: {
      firstScopeId: s.nextScopeId,
      kernelDepth: s.kernelDepth,
      gradientDepth: s.gradientDepth,
      dataMoves: s.numDataMovesStack.length,
      profiling: s.profiling,
    },
  };
  current = call;
  clearInFlight();
  finalizer.register(token, call, token);
  // Timers run only on an empty stack: finding the synchronous part still "running" there
  // means it was terminated.
  const syncCheck = setTimeout(() => {
    if (call.inSyncPart && current === call) repairDead(call);
  }, 0);
  Deno.unrefTimer(syncCheck);
  call.syncCheck = syncCheck;
  startWatchdog();
  const finish = () => {
    finalizer.unregister(token);
    clearTimeout(call.syncCheck);
    if (current === call) current = undefined;
    call.tensors.clear();
    call.outer = undefined;
    if (!current) stopWatchdog();
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    call.inSyncPart = false;
    finish();
    throw e;
  }
  call.inSyncPart = false;
  clearTimeout(call.syncCheck);
  if (!(result instanceof Promise)) {
    finish();
    return result;
  }
  // Only these continuations hold the token: when the call is stopped they become garbage.
  const outer = result.then(
    (value) => {
      void token;
      finish();
      return value;
    },
    (error) => {
      void token;
      finish();
      throw error;
    },
  );
  // The stopped cell's promise is reachable from this one (the cell awaits it): held here, it
  // outlives the token, and the kernel can only end the cell after the repair has run.
  call.outer = outer;
  return outer as T;
}
