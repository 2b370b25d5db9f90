import { assertEquals, assertThrows } from "@std/assert";
import { ConvArgumentError, convOutputSize, convTransposeOutputSize } from "../lib/nn/shapes.ts";

interface SweepRow {
  layer: "Conv2d" | "ConvTranspose2d";
  k: number;
  s: number;
  p: number;
  op: number;
  d: number;
  out: number | null;
  error: string | null;
}
const sweep: { n: number; rows: SweepRow[] } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_shape_sweep.json", import.meta.url)),
);

Deno.test("convOutputSize: the article's cases, by hand", () => {
  assertEquals(convOutputSize(5, { kernelSize: 3, stride: 1, padding: 1 }), 5);
  assertEquals(convOutputSize(5, { kernelSize: 3 }), 3);
  assertEquals(convOutputSize(5, { kernelSize: 3, stride: 2, padding: 1 }), 3);
  assertEquals(convOutputSize(6, { kernelSize: 3, stride: 2 }), 2); // floor(3/2) + 1
  assertEquals(convOutputSize(7, { kernelSize: 3, dilation: 2 }), 3); // effective kernel 5
  assertEquals(convOutputSize(32, { kernelSize: 7, padding: 3 }), 32); // the DenseNet's lowconv
});

Deno.test("convTransposeOutputSize: the article's cases, by hand", () => {
  assertEquals(convTransposeOutputSize(5, { kernelSize: 3, stride: 1, padding: 0 }), 7);
  assertEquals(convTransposeOutputSize(5, { kernelSize: 3, stride: 2, padding: 1 }), 9);
  assertEquals(convTransposeOutputSize(5, { kernelSize: 3, stride: 1, padding: 1 }), 5);
  assertEquals(
    convTransposeOutputSize(5, { kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }),
    10,
  );
  assertEquals(convTransposeOutputSize(4, { kernelSize: 3, dilation: 2, stride: 2 }), 11);
});

Deno.test("shape formulas equal PyTorch 1.13 over the whole sweep (n=5), refusals included", () => {
  let compared = 0, refused = 0;
  for (const r of sweep.rows) {
    const args = { kernelSize: r.k, stride: r.s, padding: r.p, dilation: r.d };
    const f = () =>
      r.layer === "Conv2d"
        ? convOutputSize(sweep.n, args)
        : convTransposeOutputSize(sweep.n, { ...args, outputPadding: r.op });
    const label = `${r.layer} k=${r.k} s=${r.s} p=${r.p} op=${r.op} d=${r.d}`;
    if (r.out === null) {
      const err = assertThrows(f, ConvArgumentError, undefined, `${label} should be refused`);
      // PyTorch's reason and ours agree on which argument is at fault.
      const expectedArg = r.error!.startsWith("output padding") ? "outputPadding" : "kernelSize";
      assertEquals(err.argument, expectedArg, label);
      refused++;
    } else {
      assertEquals(f(), r.out, label);
    }
    compared++;
  }
  assertEquals(compared, 360);
  assertEquals(refused, 84);
});

Deno.test("shape formulas: invalid arguments name the argument", () => {
  const cases: [() => unknown, string, string][] = [
    [() => convOutputSize(5, { kernelSize: 0 }), "kernelSize", "positive"],
    [() => convOutputSize(5, { kernelSize: 2.5 }), "kernelSize", "integer"],
    [() => convOutputSize(5, { kernelSize: 3, stride: 0 }), "stride", "positive"],
    [() => convOutputSize(5, { kernelSize: 3, padding: -1 }), "padding", "non-negative"],
    [() => convOutputSize(5, { kernelSize: 3, dilation: 0 }), "dilation", "positive"],
    [() => convOutputSize(0, { kernelSize: 1 }), "input size", "positive"],
    [() => convOutputSize(Number.NaN, { kernelSize: 1 }), "input size", "integer"],
    [() => convOutputSize(5, { kernelSize: 7 }), "kernelSize", "output size would be -1"],
    [
      () => convTransposeOutputSize(5, { kernelSize: 3, stride: 2, outputPadding: 2 }),
      "outputPadding",
      "smaller than either stride or dilation",
    ],
    [
      () => convTransposeOutputSize(5, { kernelSize: 3, outputPadding: -1 }),
      "outputPadding",
      "non-negative",
    ],
    [
      () => convTransposeOutputSize(1, { kernelSize: 1, padding: 1 }),
      "padding",
      "output size would be -1",
    ],
    [
      () => convTransposeOutputSize(5, { kernelSize: "3" as unknown as number }),
      "kernelSize",
      'got "3"',
    ],
  ];
  for (const [f, argument, text] of cases) {
    const err = assertThrows(f, ConvArgumentError, text);
    assertEquals(err.argument, argument);
  }
});
