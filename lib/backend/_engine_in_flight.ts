/**
 * The tfjs-engine operations of a lib call that are under way (a tensor's registration or
 * disposal, a variable's assignment), so that one a Stop cut in half can be finished by the repair
 * (`engine_repair.ts`).
 *
 * Why: tfjs's `disposeTensor` first lowers the tensor count, then releases the data; the tensor
 * is only marked disposed after it returns. `Variable.assign` disposes the old value, then
 * registers the new one. A Stop between those steps left a tensor the engine had already
 * counted out but that still looked alive, so the repair disposed it again: the count went one
 * below the truth, and the backend could release the data twice (seen on notebook 02: counts of
 * -1 and -2 after Stops, then "memory access out of bounds" in the next run). A tensor counted in
 * but not yet recorded was the opposite case: left alive for good, and a new tensor's data that
 * the engine never registered (the backend wrote it before the registration) stayed on the
 * backend for good. Each operation notes the tensor count, the byte count and the data's
 * reference count when it starts; comparing them with the engine's state tells which of its
 * steps were done (so tensors that other code, a timer of the user's, makes between the Stop and
 * the repair can mislead it). The hooks end an operation with {@linkcode endOp} in a `finally`,
 * so one that throws (a shape mismatch in `Variable.assign`) is ended too: V8's termination (a
 * Stop) skips `finally`, so a cut operation stays noted.
 *
 * @example
 * ```ts
 * import { beginOp, endOp, settleInFlight } from "./_engine_in_flight.ts";
 * const n = beginOp("dispose", tensor);
 * try {
 *   tensor.dispose();
 * } finally {
 *   endOp(n); // a Stop skips this: the cut operation stays noted
 * }
 * settleInFlight((t) => t.dispose()); // after a Stop: finishes what was cut in half; [] here
 * ```
 * @module
 */
import { tf } from "./tf.ts";

/** A backend's reference counting, as tfjs's `KernelBackend` has it. */
interface Backend {
  refCount(dataId: object): number;
  incRef(dataId: object): void;
  disposeData(dataId: object): boolean;
}

/** The engine internals used here (tfjs-core 4.22's engine.ts). */
interface Engine {
  state: {
    numTensors: number;
    numBytes: number;
    tensorInfo: Map<object, { backend: Backend; bytes: number }>;
    registeredVariables: Record<string, tf.Variable>;
  };
  backend: Backend;
  incRef(t: tf.Tensor, backend: Backend | null): void;
  removeDataId(dataId: object, backend: Backend): void;
}

/** An operation under way. */
interface Op {
  kind: "track" | "dispose" | "assign";
  /** The tensor registered or disposed, or the variable assigned. */
  t: tf.Tensor;
  /** The engine's tensor count when it started. */
  count: number;
  /** The engine's byte count when it started. */
  numBytes: number;
  /**
   * The data it releases (the tensor's, the variable's old value), its backend and count. For a
   * registration: the new tensor's data and the backend passed to `trackTensor` (null: the
   * engine's); `refs` is not read.
   */
  dataId: object;
  backend: Backend | null;
  refs: number;
  /** For a disposal or an assignment: the bytes the engine's disposal takes off its count. */
  bytes?: number;
  /** For an assignment: the new value and its data's reference count then. */
  value?: tf.Tensor;
  valueRefs?: number;
}

const engine = () => tf.engine() as unknown as Engine;
const ops: Op[] = [];

function dataOf(t: tf.Tensor): { dataId: object; backend: Backend; refs: number } {
  const e = engine(), dataId = t.dataId as object;
  const backend = e.state.tensorInfo.get(dataId)?.backend ?? e.backend;
  return { dataId, backend, refs: backend.refCount(dataId) };
}

/**
 * The bytes the engine's `trackTensor` adds to its count for `t`, or (`disposal`) its
 * `disposeTensor` takes off: complex tensors are counted by their components, string tensors
 * when their values are written.
 */
function bytesOf(t: tf.Tensor, disposal: boolean): number {
  if (t.dtype === "complex64") return 0;
  if (t.dtype === "string") {
    return disposal ? engine().state.tensorInfo.get(t.dataId as object)?.bytes ?? 0 : 0;
  }
  return t.size * tf.util.bytesPerElement(t.dtype);
}

/**
 * Notes an operation starting; returns the depth to pass to {@linkcode endOp}. For a
 * registration (`"track"`), `backend` is the one passed to the engine's `trackTensor`.
 *
 * @example
 * ```ts
 * const n = beginOp("assign", variable, newValue);
 * ```
 */
export function beginOp(
  kind: Op["kind"],
  t: tf.Tensor,
  value?: tf.Tensor,
  backend?: unknown,
): number {
  const { numTensors: count, numBytes } = engine().state;
  // A new tensor's data is only read if the registration is cut (it is every op's hot path).
  if (kind === "track") {
    return ops.push({
      kind,
      t,
      count,
      numBytes,
      dataId: t.dataId,
      backend: (backend ?? null) as Backend | null,
      refs: 0,
    });
  }
  const op: Op = { kind, t, count, numBytes, ...dataOf(t), bytes: bytesOf(t, true) };
  if (value) {
    op.value = value;
    op.valueRefs = dataOf(value).refs;
  }
  return ops.push(op);
}

/**
 * Notes that the operation begun at depth `n` ended (and any begun inside it).
 *
 * @example
 * ```ts
 * endOp(beginOp("dispose", tensor));
 * ```
 */
export function endOp(n: number): void {
  ops.length = n - 1;
}

/**
 * Forgets every operation noted (at the start of a call: those left are not its own).
 *
 * @example
 * ```ts
 * clearInFlight();
 * ```
 */
export function clearInFlight(): void {
  ops.length = 0;
}

/** Marks `t` disposed the way `Tensor.dispose` does after the engine's part. */
function markDisposed(t: tf.Tensor): void {
  (t as unknown as { isDisposedInternal: boolean }).isDisposedInternal = true;
  if (t instanceof tf.Variable) {
    const registered = engine().state.registeredVariables;
    if (registered[t.name] === t) delete registered[t.name];
  }
}

/**
 * The rest of the engine's `disposeTensor` after its count went down: lower the byte count
 * (unless done: it differs from the one noted) and release the data.
 */
function releaseData(op: Op): void {
  const s = engine().state;
  if (s.numBytes === op.numBytes) s.numBytes -= op.bytes!;
  const { dataId, refs } = op, backend = op.backend!;
  // Reference count unchanged: the backend has not released it yet.
  if (refs > 0 && backend.refCount(dataId) === refs) {
    if (backend.disposeData(dataId)) engine().removeDataId(dataId, backend);
  } else if (backend.refCount(dataId) === 0) {
    engine().removeDataId(dataId, backend);
  }
}

/**
 * Finishes the operation a Stop cut in half, if any, and forgets the rest; returns what it did.
 * A tensor registered but maybe not recorded yet is passed to `adopt`. Call with the engine
 * otherwise untouched since the Stop, before disposing anything.
 *
 * @example
 * ```ts
 * const done = settleInFlight((t) => t.dispose()); // e.g. ["assign of conv1/kernel finished"]
 * ```
 */
export function settleInFlight(adopt: (t: tf.Tensor) => void): string[] {
  // The outermost is the one cut: those above it are its own steps (an assignment's disposal).
  const op = ops[0];
  ops.length = 0;
  if (!op) return [];
  const e = engine(), s = e.state;
  if (op.kind === "track") {
    // trackTensor: count the tensor, then its bytes, then register its data, then record it.
    const bytes = bytesOf(op.t, false), registered = s.tensorInfo.has(op.dataId);
    // A new tensor's data is on the backend before its registration (written, or a kernel's
    // output): the engine never registered it, so no disposal would release it.
    const free = () => (op.backend ?? e.backend).disposeData(op.dataId);
    if (s.numTensors === op.count) {
      if (!registered) free();
      markDisposed(op.t); // never counted: nobody may use it
      return [];
    }
    // Counted: its bytes too, unless they were not yet (the byte count is the one noted).
    if (bytes > 0 && s.numBytes === op.numBytes) s.numBytes += bytes;
    if (registered) {
      adopt(op.t); // maybe unrecorded: disposed by the repair with the call's tensors
      return [];
    }
    // Counted but its data not registered: the engine's disposal would skip it.
    s.numTensors--;
    s.numBytes -= bytes;
    free();
    markDisposed(op.t);
    return [`registration of tensor ${op.t.id} undone`];
  }
  const counted = s.numTensors === op.count - 1; // the tensor count already went down
  if (op.kind === "dispose") {
    if (!counted) return []; // not started: the repair disposes it as any other
    releaseData(op);
    markDisposed(op.t);
    return [`disposal of tensor ${op.t.id} finished`];
  }
  const v = op.t as tf.Variable, value = op.value!;
  const name = `assign of ${v.name}`;
  if (counted) {
    // The old value was counted out, the new one not yet in: finish both.
    releaseData(op);
    v.dataId = value.dataId;
    e.incRef(v, null);
    return [`${name} finished`];
  }
  if (v.dataId !== op.dataId && dataOf(value).refs === op.valueRefs) {
    // Counted in again, maybe not its bytes yet, and the backend has no reference of the
    // variable's yet.
    if (s.numBytes === op.numBytes - op.bytes!) s.numBytes += op.bytes!;
    e.backend.incRef(v.dataId as object);
    return [`${name} finished`];
  }
  return [];
}
