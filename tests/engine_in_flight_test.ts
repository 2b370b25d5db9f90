// lib/backend/_engine_in_flight.ts: the state a Stop leaves when it cuts one of tfjs's engine
// operations in half, made here by running the operation's first part on the real engine (the
// part tfjs runs before the point where a Stop landed), then settled as the repair does.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import { beginOp, endOp, settleInFlight } from "../lib/backend/_engine_in_flight.ts";
import { interruptSafe } from "../lib/backend/engine_repair.ts";

interface Backend {
  refCount(dataId: object): number;
  incRef(dataId: object): void;
  write(values: Float32Array, shape: number[], dtype: string): object;
}
interface Engine {
  disposeTensor(t: tf.Tensor): void;
  nextTensorId(): number;
  state: { numTensors: number; numBytes: number };
  backend: Backend;
}
const engine = () => tf.engine() as unknown as Engine;

/**
 * A new tensor of 3 floats (12 bytes) whose data is on the backend (refCount 1), as a kernel's
 * output is right before the engine's trackTensor; `dataId`: an existing tensor's data to share
 * (the backend's reference is taken, as a reshape kernel does).
 */
function untracked(dataId?: object): tf.Tensor {
  const b = engine().backend;
  if (dataId) b.incRef(dataId);
  else dataId = b.write(new Float32Array([7, 8, 9]), [3], "float32");
  return new tf.Tensor([3], "float32", dataId, engine().nextTensorId());
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`${backend}: a disposal cut after the engine's part is not done twice`, async () => {
    await useBackend(backend);
    const t = tf.tensor([1, 2, 3]);
    const view = t.reshape([3, 1]); // shares t's data: two references
    const count = tf.memory().numTensors;
    beginOp("dispose", view);
    // Tensor.dispose's engine part ran; the Stop came before it marked the tensor disposed.
    engine().disposeTensor(view);
    assert(!view.isDisposed);
    const adopted: tf.Tensor[] = [];
    assertEquals(settleInFlight((x) => adopted.push(x)), [
      `disposal of tensor ${view.id} finished`,
    ]);
    assert(view.isDisposed, "the cut tensor still looks alive");
    view.dispose(); // what the repair does with every tensor of the call: nothing more now
    assertEquals(tf.memory().numTensors, count - 1);
    assertEquals(engine().backend.refCount(t.dataId), 1);
    assertEquals(Array.from(await t.data()), [1, 2, 3], "the data the other tensor holds");
    assertEquals(adopted, []);
    t.dispose();
    assertEquals(tf.memory().numTensors, count - 2);
  });

  Deno.test(`${backend}: an assign cut after the old value's disposal is finished`, async () => {
    await useBackend(backend);
    const v = tf.variable(tf.tensor([1, 2]), true, `inflight_${backend}`);
    const value = tf.tensor([3, 4]);
    const count = tf.memory().numTensors;
    beginOp("assign", v, value);
    // Variable.assign's first step ran (the old value counted out); the Stop came before the
    // new value was registered.
    engine().disposeTensor(v);
    assertEquals(tf.memory().numTensors, count - 1);
    assertEquals(settleInFlight(() => {}), [`assign of ${v.name} finished`]);
    assertEquals(tf.memory().numTensors, count);
    value.dispose(); // the variable keeps its own reference to the new value's data
    assertEquals(Array.from(await v.data()), [3, 4]);
    v.dispose();
    assertEquals(tf.memory().numTensors, count - 2);
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  // trackTensor's steps: numTensors++, numBytes += bytes, its data registered, recorded in scope.
  for (const step of [0, 1, 2] as const) {
    const what = ["before its count", "after its count", "after its bytes"][step];
    Deno.test(`${backend}: a new tensor's registration cut ${what} frees its data`, async () => {
      await useBackend(backend);
      const s = engine().state, { numTensors, numBytes } = s;
      const t = untracked();
      beginOp("track", t, undefined, engine().backend);
      if (step >= 1) s.numTensors++;
      if (step >= 2) s.numBytes += 12;
      const adopted: tf.Tensor[] = [];
      assertEquals(
        settleInFlight((x) => adopted.push(x)),
        step === 0 ? [] : [`registration of tensor ${t.id} undone`],
      );
      assert(t.isDisposed);
      assertEquals(adopted, []);
      assertEquals(s.numTensors, numTensors);
      assertEquals(s.numBytes, numBytes);
      assertEquals(engine().backend.refCount(t.dataId), 0, "the data is still on the backend");
    });
  }

  Deno.test(`${backend}: a shared tensor's registration cut after its count is adopted`, async () => {
    await useBackend(backend);
    const base = tf.tensor([1, 2, 3]);
    const s = engine().state, { numTensors, numBytes } = s;
    const t = untracked(base.dataId);
    beginOp("track", t, undefined, null);
    s.numTensors++; // its bytes not yet
    const adopted: tf.Tensor[] = [];
    assertEquals(settleInFlight((x) => adopted.push(x)), []);
    assertEquals(adopted, [t]);
    t.dispose(); // the repair disposes what it adopted
    assertEquals(s.numTensors, numTensors);
    assertEquals(s.numBytes, numBytes);
    assertEquals(engine().backend.refCount(base.dataId), 1);
    base.dispose();
  });

  Deno.test(`${backend}: a disposal cut before its bytes are counted out`, async () => {
    await useBackend(backend);
    const t = tf.tensor([1, 2, 3]);
    const view = t.reshape([3, 1]);
    const s = engine().state, { numTensors, numBytes } = s;
    beginOp("dispose", view);
    s.numTensors--; // disposeTensor's first step; the Stop came before numBytes -= bytes
    assertEquals(settleInFlight(() => {}), [`disposal of tensor ${view.id} finished`]);
    assertEquals(s.numTensors, numTensors - 1);
    assertEquals(s.numBytes, numBytes - 12);
    assertEquals(engine().backend.refCount(t.dataId), 1);
    t.dispose();
    assertEquals(engine().backend.refCount(t.dataId), 0);
  });

  Deno.test(`${backend}: an assign cut before the old value's bytes are counted out`, async () => {
    await useBackend(backend);
    const init = tf.tensor([1, 2]);
    const v = tf.variable(init, true, `inflight_bytes_${backend}`);
    init.dispose(); // the variable holds the only reference to the old data
    const value = tf.tensor([3, 4]);
    const s = engine().state, { numTensors, numBytes } = s;
    const old = v.dataId;
    beginOp("assign", v, value);
    s.numTensors--; // the old value's disposal began; the Stop came before numBytes -= bytes
    assertEquals(settleInFlight(() => {}), [`assign of ${v.name} finished`]);
    assertEquals(s.numTensors, numTensors);
    assertEquals(s.numBytes, numBytes);
    assertEquals(engine().backend.refCount(old), 0, "the old value's data is still there");
    assertEquals(engine().backend.refCount(value.dataId), 2);
    value.dispose();
    v.dispose();
    assertEquals(s.numTensors, numTensors - 2);
    assertEquals(s.numBytes, numBytes - 16);
  });

  Deno.test(`${backend}: an assign cut before the new value's bytes are counted in`, async () => {
    await useBackend(backend);
    const v = tf.variable(tf.tensor([1, 2]), true, `inflight_in_${backend}`);
    const value = tf.tensor([3, 4]);
    const s = engine().state, { numTensors, numBytes } = s;
    beginOp("assign", v, value);
    // The old value's disposal ran, the variable took the new data, and trackTensor counted it;
    // the Stop came before numBytes += bytes.
    engine().disposeTensor(v);
    v.dataId = value.dataId;
    s.numTensors++;
    assertEquals(settleInFlight(() => {}), [`assign of ${v.name} finished`]);
    assertEquals(s.numTensors, numTensors);
    assertEquals(s.numBytes, numBytes);
    assertEquals(engine().backend.refCount(value.dataId), 2);
    value.dispose();
    v.dispose();
    assertEquals(s.numTensors, numTensors - 2);
  });
}

Deno.test("an assign that throws ends its noted operation", async () => {
  await useBackend("cpu");
  const v = tf.variable(tf.tensor([1, 2]), true, "inflight_throws");
  const wrong = tf.zeros([3]);
  interruptSafe("assignThrows", () => {
    assertThrows(() => v.assign(wrong), Error, "shape");
    const t = tf.scalar(1);
    const n = beginOp("track", t);
    assertEquals(n, 1, "a stale operation is still noted");
    endOp(n);
    t.dispose();
  });
  wrong.dispose();
  v.dispose();
});

Deno.test("nothing cut: settling does nothing", () => {
  const t = tf.tensor([5]);
  const count = tf.memory().numTensors;
  beginOp("dispose", t); // the Stop came at the entry of the engine's part
  assertEquals(settleInFlight(() => {}), []);
  assert(!t.isDisposed);
  assertEquals(tf.memory().numTensors, count);
  t.dispose();
  assertEquals(tf.memory().numTensors, count - 1);
  assertEquals(settleInFlight(() => {}), [], "the noted operation was forgotten");
});
