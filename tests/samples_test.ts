import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { decode, hasPngSignature } from "fast-png";
import { encodePng, sampleGrid, sampleGridImage, type SampleSource } from "../lib/viz/samples.ts";
import { figureBundle, PLOTLY_MIME } from "../lib/viz/plotly.ts";
import { IMAGE_BYTES, imageSet } from "../lib/data/cifar10.ts";
import { SYNTHETIC_CLASSES, SYNTHETIC_NAME, syntheticImages } from "../lib/data/synthetic.ts";

/** Decodes a PNG with fast-png's decoder (CRCs checked): 8-bit RGB is what encodePng writes. */
function decodePng(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  assert(hasPngSignature(png), "PNG signature");
  const { width, height, depth, channels, data } = decode(png, { checkCrc: true });
  assertEquals([depth, channels], [8, 3]);
  return { width, height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

const source: SampleSource = {
  name: SYNTHETIC_NAME,
  classNames: SYNTHETIC_CLASSES,
  train: syntheticImages("train", 60),
  test: syntheticImages("test", 20),
};

Deno.test("encodePng: a valid PNG that decodes to the same pixels", () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) & 0xff);
  const png = decodePng(encodePng(rgb, 5, 3));
  assertEquals([png.width, png.height], [5, 3]);
  assertEquals(png.rgb, rgb);
  assertThrows(() => encodePng(rgb, 4, 3), RangeError, "needs 36 bytes");
});

Deno.test("sampleGridImage: one row per class, magnified images of that class, white gaps", () => {
  const grid = sampleGridImage(source, { perClass: 3, scale: 2, gap: 1 });
  assertEquals([grid.width, grid.height], [3 * 64 + 4 * 2, 10 * 64 + 11 * 2]); // gaps scale too
  grid.indices.forEach((row, c) => {
    assertEquals(row.length, 3);
    for (const i of row) assertEquals(source.train.labels[i], c);
  });
  // Output pixel (y, x) of cell (row 4, column 2) is source pixel (y/2, x/2) of that image.
  const i = grid.indices[4][2];
  const top = 2 + 4 * 66, left = 2 + 2 * 66;
  for (const [y, x] of [[0, 0], [13, 40], [63, 63]]) {
    for (let k = 0; k < 3; k++) {
      const src =
        source.train.images[i * IMAGE_BYTES + (Math.floor(y / 2) * 32 + Math.floor(x / 2)) * 3 + k];
      assertEquals(grid.rgb[((top + y) * grid.width + left + x) * 3 + k], src);
    }
  }
  assertEquals([...grid.rgb.subarray(0, 3)], [255, 255, 255]); // gap
  // Classes without enough images leave white cells.
  const sparse = { ...source, train: imageSet(new Uint8Array(IMAGE_BYTES), new Uint8Array([2])) };
  const g2 = sampleGridImage(sparse, { perClass: 2, scale: 1, gap: 0 });
  assertEquals(g2.indices[2], [0, -1]);
  assertEquals(g2.indices[0], [-1, -1]);
  assert(g2.rgb.subarray(0, 32 * 3).every((v) => v === 255));
});

Deno.test("sampleGrid: a plotly image figure titled with the dataset name, in a valid bundle", () => {
  const fig = sampleGrid(source, { perClass: 4, split: "test" });
  assertEquals(fig.data.length, 1);
  const trace = fig.data[0] as { type: string; source: string };
  assertEquals(trace.type, "image");
  assert(trace.source.startsWith("data:image/png;base64,"));
  const png = decodePng(
    Uint8Array.from(atob(trace.source.split(",")[1]), (ch) => ch.charCodeAt(0)),
  );
  const grid = sampleGridImage(source, { perClass: 4, split: "test" });
  assertEquals([png.width, png.height], [4 * 33 + 1, 10 * 33 + 1]); // unmagnified, 1 px gaps
  assertEquals(png.rgb, grid.rgb);
  assertEquals((fig.data[0] as { zsmooth: boolean }).zsmooth, false);
  assertEquals(fig.layout?.width, png.width * 3 + 140); // magnified 3× on screen
  const layout = fig.layout as {
    title: { text: string };
    yaxis: { ticktext: string[]; tickvals: number[] };
  };
  assertEquals(layout.title.text, `${SYNTHETIC_NAME}: 4 test images per class`);
  assertEquals(layout.yaxis.ticktext, [...SYNTHETIC_CLASSES]);
  assertEquals(layout.yaxis.tickvals, grid.rowCentres);
  const bundle = figureBundle(fig, { embedPlotly: false });
  assertEquals((bundle[PLOTLY_MIME] as { data: unknown[] }).data, fig.data);
  assertStringIncludes(
    bundle["text/plain"] as string,
    `"${SYNTHETIC_NAME}: 4 test images per class"`,
  );
  assertThrows(() => sampleGrid(source, { split: "val" as "test" }), RangeError, "split");
});
