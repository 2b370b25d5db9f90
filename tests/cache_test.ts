import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { cachedRun, changedParts, fingerprint } from "../lib/notebook/cache.ts";
import { renderReport } from "../lib/notebook/html.ts";
import type { Notebook } from "../lib/notebook/nbformat.ts";
import { FIXTURES } from "./_notebook_helpers.ts";

Deno.test("cache: the fingerprint changes with the source, a parameter, the dataset, a lib/ file", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const lib = `${tmp}/lib`;
    const data = `${tmp}/data`;
    await Deno.mkdir(`${lib}/nn`, { recursive: true });
    await Deno.mkdir(data);
    await Deno.writeTextFile(`${lib}/nn/conv.ts`, "export const k = 1;\n");
    await Deno.writeTextFile(`${tmp}/deno.json`, "{}");
    await Deno.copyFile(`${FIXTURES}small.ipynb`, `${tmp}/nb.ipynb`);
    const fp = (parameters: Record<string, unknown> = { epochs: 1 }) =>
      fingerprint({
        notebookPath: `${tmp}/nb.ipynb`,
        parameters,
        libDir: lib,
        extraFiles: [`${tmp}/deno.json`],
        dataDir: data,
      });
    const base = await fp();
    assertEquals(changedParts(base, await fp()), [], "same inputs, same fingerprint");
    // Report options change the written report, so a report made with others is not reused;
    // none set keeps the plain fingerprint.
    const withOptions = (reportOptions: Record<string, unknown>) =>
      fingerprint({
        notebookPath: `${tmp}/nb.ipynb`,
        parameters: { epochs: 1 },
        libDir: lib,
        extraFiles: [`${tmp}/deno.json`],
        dataDir: data,
        reportOptions,
      });
    assertEquals(changedParts(base, await withOptions({})), []);
    assertEquals(changedParts(base, await withOptions({ noInput: true })), ["parameters"]);
    assertEquals(
      changedParts(await withOptions({ noInput: true }), await withOptions({ pdf: true })),
      ["parameters"],
    );
    assertEquals(changedParts(base, await fp({ epochs: 2 })), ["parameters"]);
    assertEquals(
      changedParts(await fp({ a: 1, b: 2 }), await fp({ b: 2, a: 1 })),
      [],
      "key order does not matter",
    );
    await Deno.writeTextFile(`${lib}/nn/conv.ts`, "export const k = 2;\n");
    assertEquals(changedParts(base, await fp()), ["lib"]);
    const afterLib = await fp();
    await Deno.writeTextFile(`${tmp}/deno.json`, '{"imports": {}}');
    assertEquals(changedParts(afterLib, await fp()), ["lib"], "deno.json counts as code");
    const afterJson = await fp();
    await Deno.writeTextFile(`${data}/test_batch.bin`, "x");
    assertEquals(changedParts(afterJson, await fp()), ["dataset"]);
    const afterData = await fp();
    await Deno.writeTextFile(`${tmp}/nb.ipynb`, "{}");
    assertEquals(changedParts(afterData, await fp()), ["source"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cache: only a successful run with the same fingerprint and its report is a hit", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const fp = { source: "s", parameters: "p", dataset: "d", lib: "l" };
    const save = (runner: Record<string, unknown>) =>
      Deno.writeTextFile(`${tmp}/a.ipynb`, JSON.stringify({ metadata: { deno_runner: runner } }));
    const check = () => cachedRun(`${tmp}/a.ipynb`, `${tmp}/a.html`, fp);
    assertEquals(await check(), { hit: false, reason: "no earlier report" });
    await save({ status: "ok", end_time: "2026-11-30T04:00:00.000Z", fingerprint: fp });
    assertEquals((await check()).hit, false, "no HTML report");
    await Deno.writeTextFile(`${tmp}/a.html`, "<p>report</p>");
    assertEquals(await check(), { hit: true, computedAt: "2026-11-30T04:00:00.000Z" });
    await save({ status: "error", fingerprint: fp });
    assertEquals(await check(), { hit: false, reason: "the earlier run did not succeed" });
    await save({ status: "degraded", fingerprint: fp });
    assertEquals((await check()).hit, false, "a degraded run is not reused");
    await save({ status: "ok", fingerprint: { ...fp, lib: "other", parameters: "x" } });
    assertEquals(await check(), { hit: false, reason: "changed: parameters, lib/" });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("report header: degraded status, what was lost, what it was computed from", () => {
  const nb: Notebook = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] };
  const header = {
    notebook: "a.ipynb",
    parameters: {},
    dataset: "none",
    date: "2026-11-30T04:00:00.000Z",
    runSeconds: 1,
  };
  const degraded = renderReport(nb, {
    ...header,
    status: "degraded",
    integrity: "2 kernel messages lost (cell 4: 2)",
    computedFrom: "source 0123456789ab, parameters 0123456789ab, dataset 0123456789ab, lib/ x",
  });
  assert(degraded.includes(`<span class="status status-error">degraded</span>`));
  assert(degraded.includes("degraded: 2 kernel messages lost (cell 4: 2); outputs may be missing"));
  assert(degraded.includes('Computed from</dt><dd class="report-computed">source 0123456789ab'));
  const ok = renderReport(nb, { ...header, status: "ok" });
  assert(!ok.includes("degraded"));
  assertNotEquals(ok, degraded);
});
