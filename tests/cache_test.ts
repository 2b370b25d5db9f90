import { assert, assertEquals, assertNotEquals } from "@std/assert";
import {
  cachedRun,
  changedParts,
  currentAdapter,
  currentEnvironment,
  describeFingerprint,
  fingerprint,
  listDataset,
  type RecordedBackend,
  type RunFingerprint,
  settleFingerprint,
} from "../lib/notebook/cache.ts";
import { backendName, recordedBackend } from "../lib/notebook/facts.ts";
import { REPORT_FACTS_MIME, threadsShown } from "../lib/util/report_facts.ts";
import { renderReport } from "../lib/notebook/html.ts";
import type { Notebook } from "../lib/notebook/nbformat.ts";
import { FIXTURES } from "./_notebook_helpers.ts";

Deno.test("cache: the fingerprint changes with the source, a parameter, a lib/ file, the environment", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const lib = `${tmp}/lib`;
    await Deno.mkdir(`${lib}/nn`, { recursive: true });
    await Deno.writeTextFile(`${lib}/nn/conv.ts`, "export const k = 1;\n");
    await Deno.writeTextFile(`${tmp}/deno.json`, "{}");
    await Deno.copyFile(`${FIXTURES}small.ipynb`, `${tmp}/nb.ipynb`);
    const fp = (
      parameters: Record<string, unknown> = { epochs: 1 },
      reportOptions?: Record<string, unknown>,
    ) =>
      fingerprint({
        notebookPath: `${tmp}/nb.ipynb`,
        parameters,
        libDir: lib,
        extraFiles: [`${tmp}/deno.json`],
        reportOptions,
      });
    const base = await fp();
    assertEquals(changedParts(base, await fp()), [], "same inputs, same fingerprint");
    // Report options change the written report, so a report made with others is not reused;
    // none set keeps the plain fingerprint.
    assertEquals(changedParts(base, await fp({ epochs: 1 }, {})), []);
    assertEquals(changedParts(base, await fp({ epochs: 1 }, { noInput: true })), ["parameters"]);
    assertEquals(
      changedParts(
        await fp({ epochs: 1 }, { noInput: true }),
        await fp({ epochs: 1 }, { pdf: true }),
      ),
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
    await Deno.writeTextFile(`${tmp}/nb.ipynb`, "{}");
    assertEquals(changedParts(afterJson, await fp()), ["source"]);

    // The environment is taken from this process: every TCONV_* variable set (empty = unset).
    assertEquals(base.environment.deno, Deno.version.deno);
    const saved = Deno.env.get("TCONV_NATIVE");
    try {
      Deno.env.set("TCONV_NATIVE", "off");
      assertEquals(currentEnvironment().env.TCONV_NATIVE, "off");
      assertEquals((await fp()).environment.env.TCONV_NATIVE, "off");
      Deno.env.set("TCONV_NATIVE", "");
      assertEquals("TCONV_NATIVE" in currentEnvironment().env, false);
    } finally {
      if (saved === undefined) Deno.env.delete("TCONV_NATIVE");
      else Deno.env.set("TCONV_NATIVE", saved);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

const ONEDNN: RecordedBackend = { name: "wasm + oneDNN 2.6.3", threads: 2, native: "oneDNN 2.6.3" };

/** A saved run, the way `runAndWrite` saves it, and a check against a fingerprint made now. */
async function savedRun(tmp: string, old: RunFingerprint, status = "ok") {
  await Deno.writeTextFile(
    `${tmp}/a.ipynb`,
    JSON.stringify({
      metadata: { deno_runner: { status, end_time: "2026-11-30T04:00:00.000Z", fingerprint: old } },
    }),
  );
  await Deno.writeTextFile(`${tmp}/a.html`, "<p>report</p>");
}

function check(
  tmp: string,
  now: RunFingerprint,
  parameters: Record<string, unknown> = { backend: "auto", native: "auto" },
  cpus = 2,
): Promise<{ hit: boolean; reason?: string; computedAt?: string }> {
  return cachedRun(`${tmp}/a.ipynb`, `${tmp}/a.html`, now, { notebookDir: tmp, parameters, cpus });
}

const before = (env: Record<string, string> = {}): RunFingerprint => ({
  source: "s",
  parameters: "p",
  lib: "l",
  environment: { deno: "2.9.6", env },
});

Deno.test("cache: only a successful run with the same fingerprint and its report is a hit", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const fp = before();
    const run = { ...fp, backend: null, dataset: null };
    const check0 = () => check(tmp, fp);
    assertEquals(await check0(), { hit: false, reason: "no earlier report" });
    await savedRun(tmp, run);
    await Deno.remove(`${tmp}/a.html`);
    assertEquals((await check0()).hit, false, "no HTML report");
    await Deno.writeTextFile(`${tmp}/a.html`, "<p>report</p>");
    assertEquals(await check0(), { hit: true, computedAt: "2026-11-30T04:00:00.000Z" });
    await savedRun(tmp, run, "error");
    assertEquals(await check0(), { hit: false, reason: "the earlier run did not succeed" });
    await savedRun(tmp, run, "degraded");
    assertEquals((await check0()).hit, false, "a degraded run is not reused");
    await savedRun(tmp, { ...run, lib: "other", parameters: "x" });
    assertEquals(await check0(), { hit: false, reason: "changed: parameters, lib/" });
    // A report from before environments were recorded is not trusted.
    const { environment: _, ...older } = run;
    await savedRun(tmp, { ...older, dataset: "e3b0c44298fc" } as unknown as RunFingerprint);
    assertEquals(await check0(), {
      hit: false,
      reason: "the earlier report does not record its environment",
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cache: a TCONV_* variable or Deno version changed re-runs, naming it and the predicted backend", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await savedRun(tmp, { ...before(), backend: ONEDNN, dataset: null });
    assertEquals((await check(tmp, before())).hit, true);
    assertEquals(await check(tmp, before({ TCONV_NATIVE: "off" })), {
      hit: false,
      reason:
        'changed: backend (wasm + oneDNN 2.6.3 → wasm), environment TCONV_NATIVE (unset → "off")',
    });
    // A `native` parameter decides before the variable does: "on" keeps oneDNN.
    assertEquals(
      await check(tmp, before({ TCONV_NATIVE: "off" }), { backend: "auto", native: "on" }),
      { hit: false, reason: 'changed: environment TCONV_NATIVE (unset → "off")' },
    );
    assertEquals(await check(tmp, before({ TCONV_THREADS: "1" })), {
      hit: false,
      reason:
        "changed: backend (wasm + oneDNN 2.6.3, 2 threads → wasm + oneDNN 2.6.3, 1 thread), " +
        'environment TCONV_THREADS (unset → "1")',
    });
    assertEquals(
      (await check(tmp, before(), { backend: "auto", native: "auto" }, 4)).reason,
      "changed: backend (wasm + oneDNN 2.6.3, 2 threads → wasm + oneDNN 2.6.3, 4 threads)",
      "more cores: more wasm threads",
    );
    assertEquals(
      (await check(tmp, before({ TCONV_BACKEND: "cpu" }))).reason,
      'changed: backend (wasm + oneDNN 2.6.3, 2 threads → cpu, 1 thread), environment TCONV_BACKEND (unset → "cpu")',
    );
    // A variable no rule knows still re-runs: the cache cannot know what a notebook reads.
    assertEquals(
      (await check(tmp, before({ TCONV_DNNL_LIBRARY: "/opt/libdnnl.so.2" }))).reason,
      'changed: environment TCONV_DNNL_LIBRARY (unset → "/opt/libdnnl.so.2")',
    );
    assertEquals(
      (await check(tmp, { ...before(), environment: { deno: "2.9.7", env: {} } })).reason,
      "changed: Deno (2.9.6 → 2.9.7)",
    );
    // Back from off to the default: the report made without oneDNN is re-run.
    await savedRun(tmp, {
      ...before({ TCONV_NATIVE: "off" }),
      backend: { name: "wasm", threads: 2, native: null },
      dataset: null,
    });
    assertEquals(
      (await check(tmp, before())).reason,
      'changed: backend (wasm → wasm + oneDNN (where it loads)), environment TCONV_NATIVE ("off" → unset)',
    );
    assertEquals((await check(tmp, before({ TCONV_NATIVE: "off" }))).hit, true);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

// oneDNN splits its sums by thread (wasm_threads_test.ts: other gradient bits on 1 and on 2
// threads), so its pool size is part of the backend: a change of it re-runs the notebook.
Deno.test("cache: oneDNN's pool size (TCONV_NATIVE_THREADS, or the cores) changed re-runs", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const interactive = { TCONV_THREADS: "1" };
    await savedRun(tmp, {
      ...before(interactive),
      backend: { ...ONEDNN, threads: 1, nativeThreads: 2 },
      dataset: null,
    });
    assertEquals((await check(tmp, before(interactive))).hit, true);
    assertEquals(await check(tmp, before({ ...interactive, TCONV_NATIVE_THREADS: "1" })), {
      hit: false,
      reason: "changed: backend (wasm + oneDNN 2.6.3; oneDNN 2.6.3 2 → 1 thread), " +
        'environment TCONV_NATIVE_THREADS (unset → "1")',
    });
    assertEquals(
      (await check(tmp, before(interactive), { backend: "auto", native: "auto" }, 4)).reason,
      "changed: backend (wasm + oneDNN 2.6.3; oneDNN 2.6.3 2 → 4 threads)",
      "more cores: a larger default pool",
    );
    // The same pool named explicitly: only the variable is new (every TCONV_* variable counts).
    assertEquals(
      (await check(tmp, before({ ...interactive, TCONV_NATIVE_THREADS: "2" }))).reason,
      'changed: environment TCONV_NATIVE_THREADS (unset → "2")',
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cache: a report made on WebGPU re-runs when this runtime's adapter is another", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const here = await currentAdapter(); // here: Mesa's llvmpipe (or none without Mesa)
    const onWebGpu = (adapter: string) => ({
      ...before(),
      backend: { name: "webgpu", threads: 1, native: null, adapter },
      dataset: null,
    });
    await savedRun(tmp, onWebGpu("NVIDIA H100"));
    assertEquals(await check(tmp, before(), { backend: "webgpu" }), {
      hit: false,
      reason: `changed: WebGPU adapter (NVIDIA H100 → ${here ?? "none"})`,
    });
    if (here !== undefined) {
      await savedRun(tmp, onWebGpu(here));
      assertEquals((await check(tmp, before(), { backend: "webgpu" })).hit, true);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cache: the backend is recorded from what the notebook published", () => {
  const published = (data: Record<string, unknown>): Notebook => ({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [{
      cell_type: "code",
      metadata: {},
      source: "",
      execution_count: 1,
      outputs: [{ output_type: "display_data", metadata: {}, data }],
    }],
  });
  const nb = published({
    "text/plain": "…",
    [REPORT_FACTS_MIME]: {
      backend: {
        backend: "webgpu",
        threads: 1,
        reason: "requested",
        native: null,
        adapter: "GPU X",
      },
    },
  });
  assertEquals(recordedBackend(nb), {
    name: "webgpu",
    threads: 1,
    native: null,
    adapter: "GPU X",
  });
  assertEquals(backendName(nb), "webgpu on GPU X (1 thread)");
  // oneDNN's pool, shown where it differs from wasm's and recorded for the cache.
  const native = published({
    "text/plain": "…",
    [REPORT_FACTS_MIME]: {
      backend: {
        backend: "wasm + oneDNN 2.6.3",
        threads: 1,
        native: "oneDNN 2.6.3",
        nativeThreads: 2,
      },
    },
  });
  assertEquals(backendName(native), "wasm + oneDNN 2.6.3 (1 thread; oneDNN 2 threads)");
  // one count where both pools have it, or where no native library runs
  assertEquals(threadsShown(2, 2, "oneDNN 2.6.3"), "2 threads");
  assertEquals(threadsShown(2, 1, "oneDNN 2.6.3"), "2 threads; oneDNN 1 thread");
  assertEquals(threadsShown(1, 4, null), "1 thread");
  assertEquals(recordedBackend(native), {
    name: "wasm + oneDNN 2.6.3",
    threads: 1,
    native: "oneDNN 2.6.3",
    nativeThreads: 2,
  });
  assertEquals(recordedBackend(published({ "text/plain": "no backend" })), undefined);
});

Deno.test("cache: the dataset is the folder the run read, listed after the run", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const nbDir = `${tmp}/notebooks`;
    await Deno.mkdir(nbDir);
    // The run creates its data (as notebook 02 creates data/synthetic-10-batches-bin).
    await Deno.mkdir(`${tmp}/data/set`, { recursive: true });
    await Deno.writeTextFile(`${tmp}/data/set/train.bin`, "0123");
    const run = await settleFingerprint(before(), {
      notebookDir: nbDir,
      backend: ONEDNN,
      datasetDir: `${tmp}/data`,
    });
    assertEquals(run.dataset?.dir, "../data");
    assertEquals(run.dataset?.files, 1);
    assertEquals(run.backend, ONEDNN);
    const after = (await settleFingerprint(before(), { notebookDir: nbDir })).dataset;
    assertEquals(after, null, "a run that published no dataset depends on none");
    await savedRun(tmp, run);
    const again = () =>
      cachedRun(`${tmp}/a.ipynb`, `${tmp}/a.html`, before(), {
        notebookDir: nbDir,
        parameters: {},
        cpus: 2,
      });
    assertEquals((await again()).hit, true, "data created by the run is no change");
    await Deno.writeTextFile(`${tmp}/data/set/test.bin`, "45");
    assertEquals(await again(), { hit: false, reason: "changed: dataset (../data: 1 → 2 files)" });
    await Deno.remove(`${tmp}/data/set/test.bin`);
    await Deno.writeTextFile(`${tmp}/data/set/train.bin`, "01234");
    assertEquals(await again(), {
      hit: false,
      reason: "changed: dataset (../data: a file's size or time)",
    });
    assertEquals(
      describeFingerprint(run).includes(`dataset ${run.dataset!.listing.slice(0, 12)}`),
      true,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cache: a data file removed between the listing and its stat is left out, not a crash", async () => {
  const tmp = await Deno.makeTempDir();
  const realStat = Deno.stat;
  try {
    for (const name of ["a.bin", "b.bin", "c.bin"]) {
      await Deno.writeTextFile(`${tmp}/${name}`, name);
    }
    const whole = await listDataset(tmp);
    assertEquals(whole.files, 3);
    // Another process deletes b.bin after the folder was read and before b.bin's stat: the
    // deletion happens inside stat, exactly in that window, every time.
    Deno.stat = async (path: string | URL) => {
      if (String(path).endsWith("/b.bin")) await Deno.remove(path);
      return await realStat(path);
    };
    const racing = await listDataset(tmp);
    Deno.stat = realStat;
    assertEquals(racing.files, 2);
    assertEquals(racing, await listDataset(tmp), "the listing of what is there");
  } finally {
    Deno.stat = realStat;
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
