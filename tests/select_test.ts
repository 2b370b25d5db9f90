// Backend selection (lib/backend/select.ts) and useBackend("auto") (lib/backend/mod.ts).
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import {
  type AdapterLike,
  BACKEND_ENV_VAR,
  BACKEND_PREFERENCES,
  chooseBackend,
  type GpuLike,
  probeWebGpu,
} from "../lib/backend/select.ts";
import {
  NATIVE_ENV_VAR,
  nativeKernels,
  nativeThreadsWanted,
  parseNativePreference,
  selectBackend,
  useBackend,
  wasmThreadsWanted,
} from "../lib/backend/mod.ts";
import { selectAndShowBackend } from "../lib/viz/backend_view.ts";
import { threadsShown } from "../lib/util/report_facts.ts";

/** A stand-in for `navigator.gpu` answering with `adapter`. */
const gpuWith = (adapter: AdapterLike | null): GpuLike => ({
  requestAdapter: () => Promise.resolve(adapter),
});
const HARDWARE = gpuWith({ info: { description: "NVIDIA H100", isFallbackAdapter: false } });

/** Runs `f` with the real environment variable set to `value` (unset when undefined). */
async function withEnv<T>(value: string | undefined, f: () => Promise<T>): Promise<T> {
  const before = Deno.env.get(BACKEND_ENV_VAR);
  if (value === undefined) Deno.env.delete(BACKEND_ENV_VAR);
  else Deno.env.set(BACKEND_ENV_VAR, value);
  try {
    return await f();
  } finally {
    if (before === undefined) Deno.env.delete(BACKEND_ENV_VAR);
    else Deno.env.set(BACKEND_ENV_VAR, before);
  }
}

Deno.test("an explicit preference wins over TCONV_BACKEND", async () => {
  for (const name of ["cpu", "wasm"] as const) {
    const choice = await chooseBackend(name, { env: name === "cpu" ? "wasm" : "cpu" });
    const threads = name === "wasm" ? wasmThreadsWanted() : 1;
    assertEquals(choice, { backend: name, reason: "requested", threads, source: "argument" });
  }
  assertEquals((await chooseBackend(" WASM ", { env: "cpu" })).backend, "wasm");
  await withEnv("wasm", async () => {
    assertEquals((await chooseBackend("cpu")).backend, "cpu");
    assertEquals(await useBackend("cpu"), "cpu");
  });
});

Deno.test("TCONV_BACKEND is honoured when no preference or 'auto' is given", async () => {
  for (const preference of [undefined, "", "auto"]) {
    const choice = await chooseBackend(preference, { env: "cpu", gpu: HARDWARE });
    assertEquals(choice.backend, "cpu");
    assertEquals(choice.source, "environment");
    assertEquals(choice.reason, "TCONV_BACKEND=cpu");
  }
  // "auto" or an empty value in the variable defers to detection.
  assertEquals((await chooseBackend(undefined, { env: "auto", gpu: null })).source, "auto");
  assertEquals((await chooseBackend(undefined, { env: " ", gpu: null })).backend, "wasm");
  // The real variable, through useBackend("auto").
  await withEnv("cpu", async () => {
    assertEquals((await chooseBackend()).reason, "TCONV_BACKEND=cpu");
    assertEquals(await useBackend("auto"), "cpu");
    assertEquals(tf.getBackend(), "cpu");
  });
});

Deno.test("auto picks wasm here and says why webgpu was not chosen", async () => {
  const probe = await probeWebGpu();
  if (probe.hardware) {
    // A machine with a GPU: auto starts tfjs's WebGPU backend on it (tested in webgpu_test.ts).
    assertEquals((await chooseBackend("auto", { env: "" })).backend, "webgpu");
    return;
  }
  const choice = await chooseBackend("auto", { env: "" });
  assertEquals(choice.backend, "wasm");
  // Every core (at most 8), unless TCONV_THREADS says otherwise.
  assertEquals(choice.threads, wasmThreadsWanted());
  if (!Deno.env.get("TCONV_THREADS")) {
    assertEquals(choice.threads, Math.min(8, navigator.hardwareConcurrency));
  }
  assertEquals(choice.source, "auto");
  // Here: llvmpipe, a fallback adapter.
  assertMatch(choice.reason, /^auto: webgpu not chosen: .+; wasm .* is available$/);
  assert(choice.reason.includes(probe.detail), choice.reason);
  await withEnv(undefined, async () => {
    assertEquals(await useBackend("auto"), "wasm");
    assertEquals(tf.getBackend(), "wasm");
  });
  // tfjs's WebGPU backend was not imported (it registers "webgpu" when it is).
  assertEquals(tf.findBackendFactory("webgpu"), null);
});

Deno.test("auto: webgpu only with a hardware adapter on which tfjs's WebGPU backend starts", async () => {
  const started = () => Promise.resolve();
  const auto = (gpu: GpuLike | null, webgpuBackend = true, startWebGpu = started) =>
    chooseBackend("auto", { env: "", gpu, webgpuBackend, timeoutMs: 50, startWebGpu });
  const gpu = await auto(HARDWARE);
  assertEquals([gpu.backend, gpu.reason], ["webgpu", "auto: hardware WebGPU adapter NVIDIA H100"]);
  // Vendor, architecture and the limits that bound tensor sizes are reported.
  const detailed = await auto(gpuWith({
    info: { description: "NVIDIA H100", vendor: "nvidia", architecture: "hopper" },
    limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 },
  }));
  assertEquals(
    detailed.reason,
    "auto: hardware WebGPU adapter NVIDIA H100 (vendor nvidia, architecture hopper, " +
      "maxBufferSize 4096 MiB, maxStorageBufferBindingSize 2048 MiB)",
  );
  assertMatch((await auto(HARDWARE, false)).reason, /NVIDIA H100 is present, but .* disabled/);
  // A program that reads tensors synchronously is kept off WebGPU, which would fail there,
  // without even starting it; an explicit "webgpu" is still honoured.
  let starts = 0;
  const sync = await chooseBackend("auto", {
    env: "",
    gpu: HARDWARE,
    timeoutMs: 50,
    synchronousReads: true,
    startWebGpu: () => (starts++, Promise.resolve()),
  });
  assertEquals([sync.backend, starts], ["wasm", 0]);
  assertMatch(sync.reason, /NVIDIA H100 is present, but this program reads tensors synchronously/);
  const forced = await chooseBackend("webgpu", {
    gpu: HARDWARE,
    timeoutMs: 50,
    synchronousReads: true,
  });
  assertEquals(forced.backend, "webgpu");
  // The backend failing to start (a refused shader, a lost device, a timeout): wasm, with why.
  const failed = await auto(
    HARDWARE,
    true,
    () => Promise.reject(new Error('webgpu backend: kernel "Conv2D" was refused by WebGPU')),
  );
  assertEquals(failed.backend, "wasm");
  assertMatch(failed.reason, /NVIDIA H100 is present, but .* failed on it: .*kernel "Conv2D"/);
  const cases: [GpuLike | null, RegExp][] = [
    [gpuWith({ info: { description: "llvmpipe (LLVM 15)", isFallbackAdapter: true } }), /software/],
    [gpuWith({ info: { description: "SwiftShader Device" } }), /software rasteriser/],
    [gpuWith({ isFallbackAdapter: true }), /isFallbackAdapter/],
    [gpuWith(null), /offers no adapter/],
    [null, /no navigator\.gpu/],
    [{ requestAdapter: () => Promise.reject(new Error("no driver")) }, /failed: no driver/],
    [{ requestAdapter: () => new Promise(() => {}) }, /within 50 ms/],
  ];
  for (const [stub, why] of cases) {
    const choice = await auto(stub);
    assertEquals(choice.backend, "wasm", choice.reason);
    assertMatch(choice.reason, why);
  }
});

Deno.test("unknown names are refused with the list; webgpu needs an adapter", async () => {
  const list = BACKEND_PREFERENCES.join(", ");
  assertEquals(list, "auto, cpu, wasm, webgpu");
  await assertRejects(() => chooseBackend("tpu"), RangeError, `one of ${list}, got "tpu"`);
  await assertRejects(
    () => chooseBackend(undefined, { env: "gpu" }),
    RangeError,
    `${BACKEND_ENV_VAR} must be one of ${list}, got "gpu"`,
  );
  await assertRejects(() => useBackend("tpu" as "cpu"), RangeError, `one of ${list}`);
  await assertRejects(() => chooseBackend("webgpu", { webgpuBackend: false }), Error, "disabled");
  await assertRejects(
    () => chooseBackend("webgpu", { gpu: null }),
    Error,
    'backend "webgpu" needs a WebGPU adapter: this runtime offers no navigator.gpu',
  );
  await assertRejects(
    () =>
      chooseBackend("webgpu", {
        gpu: { requestAdapter: () => new Promise(() => {}) },
        timeoutMs: 50,
      }),
    Error,
    "no WebGPU adapter answered within 50 ms",
  );
  // A software adapter is accepted when asked for, and named.
  const software = gpuWith({
    info: { description: "llvmpipe (LLVM 15)", isFallbackAdapter: true },
  });
  const explicit = await chooseBackend("webgpu", { gpu: software });
  assertEquals([explicit.backend, explicit.source], ["webgpu", "argument"]);
  assertMatch(explicit.reason, /^requested; only a software WebGPU adapter \(llvmpipe/);
});

Deno.test("selectAndShowBackend selects wasm and shows what runs its convolutions", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void printed.push(args.join(" "));
  let shown;
  try {
    shown = await selectAndShowBackend("wasm");
  } finally {
    console.log = log;
  }
  assertEquals(tf.getBackend(), "wasm", "selected, as the name says");
  const { library } = nativeKernels();
  assertEquals(shown.native, library);
  assertEquals(shown.name, library === null ? "wasm" : `wasm + ${library}`);
  // oneDNN's own pool (TCONV_NATIVE_THREADS, else every core up to 8), where it runs.
  assertEquals(shown.nativeThreads, library === null ? undefined : nativeThreadsWanted());
  assertEquals(printed, [
    `tfjs ${tf.version.tfjs} on **${shown.name}** (${
      threadsShown(shown.threads, shown.nativeThreads, shown.native)
    }): ${shown.reason}`,
  ]);
  assertMatch(shown.reason, /^requested/);
  await tf.setBackend("cpu");
});

Deno.test("parseNativePreference: any case and spacing; anything else is refused, naming its origin", () => {
  assertEquals(["auto", " Off ", "ON"].map((v) => parseNativePreference(v)), ["auto", "off", "on"]);
  assertThrows(
    () => parseNativePreference("yes"),
    RangeError,
    'native must be one of auto, on, off, got "yes"',
  );
  assertThrows(
    () => parseNativePreference("1", NATIVE_ENV_VAR),
    RangeError,
    `${NATIVE_ENV_VAR} must be one of auto, on, off, got "1"`,
  );
});

Deno.test("selectBackend: cpu is described as such; a bad native is refused before anything starts", async () => {
  const cpu = await selectBackend("cpu", { native: "auto" });
  assertEquals(tf.getBackend(), "cpu");
  assertEquals([cpu.backend, cpu.name, cpu.native, cpu.threads, cpu.source], [
    "cpu",
    "cpu",
    null,
    1,
    "argument",
  ]);
  assertEquals(cpu.reason, "requested");
  // Checked whichever the backend, so that a typo fails on every machine.
  await assertRejects(
    () => selectBackend("wasm", { native: "of" }),
    RangeError,
    'native must be one of auto, on, off, got "of"',
  );
  assertEquals(tf.getBackend(), "cpu", "nothing started");
  await assertRejects(
    () => selectBackend("gpu"),
    RangeError,
    'backend must be one of auto, cpu, wasm, webgpu, got "gpu"',
  );
});

Deno.test("selectBackend: a native preference the running wasm backend contradicts is a loud error", async () => {
  const first = await selectBackend("wasm");
  const active = first.native !== null;
  // The same decision, said explicitly, and "auto" are fine.
  assertEquals((await selectBackend("wasm", { native: active ? "on" : "off" })).name, first.name);
  assertEquals((await selectBackend("wasm", { native: "auto" })).name, first.name);
  await assertRejects(
    () => selectBackend("wasm", { native: active ? "Off" : "on" }),
    Error,
    `native = "${active ? "off" : "on"}", but this process decided when the wasm backend ` +
      `started (`,
  );
  await assertRejects(
    () => selectBackend("auto", { native: active ? "off" : "on", synchronousReads: true }),
    Error,
    `the native kernels are ${active ? "on" : "off"}; restart it (in Jupyter: restart the kernel)`,
  );
  assertEquals(nativeKernels().active, active, "the kernels did not change");
  await tf.setBackend("cpu");
});
