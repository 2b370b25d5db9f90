// lib/backend/_engine_in_flight.ts: the state a Stop leaves when it cuts one of tfjs's engine
// operations in half, made here by running the operation's first part on the real engine (the
// part tfjs runs before the point where a Stop landed), then settled as the repair does.
import { assert, assertEquals } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import { beginOp, settleInFlight } from "../lib/backend/_engine_in_flight.ts";

interface Engine {
  disposeTensor(t: tf.Tensor): void;
  backend: { refCount(dataId: object): number };
}
const engine = () => tf.engine() as unknown as Engine;

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
