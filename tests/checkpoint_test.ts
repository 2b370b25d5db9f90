import { assert, assertEquals, assertLessOrEqual, assertRejects } from "@std/assert";
import { join } from "node:path";
import { tf } from "../lib/backend/tf.ts";
import {
  completeCheckpoint,
  fileHandler,
  loadCheckpoint,
  saveCheckpoint,
  SGD,
} from "../lib/train/mod.ts";
import { tinyModel } from "./_train_helpers.ts";

Deno.test("checkpoint: model.json + weights.bin load back with tf.loadLayersModel (custom layers)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = tinyModel(7);
    await saveCheckpoint(join(dir, "ck"), {
      models: [{ name: "tiny", model }],
      meta: { epoch: 1 },
    });
    const again = await tf.loadLayersModel(fileHandler(join(dir, "ck", "tiny")));
    const x = tf.randomNormal([2, 8, 8, 3]);
    const [a, b] = [model.predict(x), again.predict(x)] as tf.Tensor[];
    assertLessOrEqual(tf.tidy(() => a.sub(b).abs().max().dataSync()[0]), 0);
    tf.dispose([x, a, b]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: a swap interrupted between its renames still finds the previous checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ck = join(dir, "checkpoint");
    const model = tinyModel(8);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = new SGD(variables, { lr: 0.1, momentum: 0.9 });
    const grads = Object.fromEntries(variables.map((v) => [v.name, tf.onesLike(v)]));
    optimizer.step(grads);
    await saveCheckpoint(ck, { models: [{ name: "m", model, optimizer }], meta: { epoch: 3 } });
    // Simulate the crash: the old checkpoint was set aside, the new one never renamed in.
    await Deno.rename(ck, join(dir, ".checkpoint.old-1234abcd"));
    assertEquals(completeCheckpoint(ck), join(dir, ".checkpoint.old-1234abcd"));
    const fresh = tinyModel(9);
    const freshOpt = new SGD(fresh.trainableWeights.map((w) => w.read() as tf.Variable), {
      lr: 0.1,
      momentum: 0.9,
    });
    const meta = await loadCheckpoint(ck, [{ name: "m", model: fresh, optimizer: freshOpt }]);
    assertEquals(meta, { epoch: 3 });
    // Loading put it back in place: the next save replaces it instead of leaving it aside.
    assertEquals(completeCheckpoint(ck), ck);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint"]);
    assertEquals(freshOpt.steps, 1);
    assertEquals(freshOpt.state().buffers.size, variables.length);
    const same = fresh.getWeights().every((w, i) =>
      tf.tidy(() => w.sub(model.getWeights()[i]).abs().max().dataSync()[0]) === 0
    );
    assert(same, "weights restored");
    await assertRejects(
      () => loadCheckpoint(join(dir, "none"), []),
      Error,
      "no complete checkpoint",
    );
    tf.dispose(Object.values(grads));
    optimizer.dispose();
    freshOpt.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A tiny model and an SGD with momentum over its trainable weights. */
function modelWithSgd(seed: number) {
  const model = tinyModel(seed);
  const sgd = new SGD(model.trainableWeights.map((w) => w.read() as tf.Variable), {
    lr: 0.1,
    momentum: 0.9,
  });
  return { model, optimizer: sgd };
}

Deno.test("checkpoint: a missing optimizer state is refused on resume, never skipped", async () => {
  const dir = await Deno.makeTempDir();
  const saved = modelWithSgd(8), fresh = modelWithSgd(9);
  try {
    const ck = join(dir, "checkpoint");
    await saveCheckpoint(ck, { models: [{ name: "m", ...saved }], meta: { epoch: 1 } });
    await Deno.remove(join(ck, "m", "optimizer.json"));
    await assertRejects(
      () => loadCheckpoint(ck, [{ name: "m", ...fresh }]),
      Error,
      "has no optimizer state (optimizer.json missing): resuming would restart SGD momentum",
    );
    // Without an optimizer to restore (e.g. evaluation), the weights alone still load.
    assertEquals(await loadCheckpoint(ck, [{ name: "m", model: fresh.model }]), { epoch: 1 });
  } finally {
    saved.optimizer.dispose();
    fresh.optimizer.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
