// The backend-choice rules shared by lib/backend and lib/notebook (lib/util/backend_rules.ts).
// Their use in a report's cache check is tested in cache_test.ts; their use in chooseBackend and
// startBackend in select_test.ts.
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  BACKEND_ENV_VAR,
  backendWanted,
  MAX_WASM_THREADS,
  NATIVE_ENV_VAR,
  NATIVE_PREFERENCES,
  NATIVE_THREADS_ENV_VAR,
  nativeThreadCount,
  nativeWanted,
  predictBackend,
  THREADS_ENV_VAR,
  wasmThreadCount,
} from "../lib/util/backend_rules.ts";
import * as native from "../lib/backend/native/mod.ts";

/** An environment reader that fails the test if the rule reads it. */
const unread = (): string => {
  throw new Error("the variable was read although the argument decides");
};

Deno.test("backendWanted: an explicit backend wins; auto and empty defer to TCONV_BACKEND, then detection", () => {
  assertEquals(backendWanted("wasm", unread), { preference: "wasm", source: "argument" });
  assertEquals(backendWanted(" CPU ", unread), { preference: "cpu", source: "argument" });
  assertEquals(backendWanted("auto", () => "webgpu"), {
    preference: "webgpu",
    source: "environment",
  });
  assertEquals(backendWanted("", () => "cpu"), { preference: "cpu", source: "environment" });
  assertEquals(backendWanted(undefined, () => undefined), { preference: "auto", source: "auto" });
  assertEquals(backendWanted("auto", () => " "), { preference: "auto", source: "auto" });
  assertEquals(backendWanted(undefined, () => "auto"), { preference: "auto", source: "auto" });
  assertThrows(
    () => backendWanted("tpu", unread),
    RangeError,
    'backend must be one of auto, cpu, wasm, webgpu, got "tpu"',
  );
  assertThrows(
    () => backendWanted("auto", () => "gpu"),
    RangeError,
    `${BACKEND_ENV_VAR} must be one of auto, cpu, wasm, webgpu, got "gpu"`,
  );
});

Deno.test("nativeWanted: on and off win; auto defers to TCONV_NATIVE; bad values are named", () => {
  assertEquals(nativeWanted("on", unread), "on");
  assertEquals(nativeWanted(" Off ", unread), "off");
  assertEquals(nativeWanted("auto", () => "OFF"), "off");
  assertEquals(nativeWanted(undefined, () => ""), "auto");
  assertEquals(nativeWanted(undefined, () => undefined), "auto");
  assertThrows(
    () => nativeWanted("maybe", unread),
    RangeError,
    'native must be one of auto, on, off, got "maybe"',
  );
  assertThrows(
    () => nativeWanted("auto", () => "yes"),
    RangeError,
    `${NATIVE_ENV_VAR} must be one of auto, on, off, got "yes"`,
  );
});

Deno.test("native/mod.ts takes the variable, its values and their parsing from the shared rules", () => {
  // One definition: the very same array, and the same parse and message.
  assert(native.NATIVE_PREFERENCES === NATIVE_PREFERENCES, "a copy of NATIVE_PREFERENCES");
  assertEquals(native.NATIVE_ENV_VAR, NATIVE_ENV_VAR);
  for (const value of ["auto", " ON ", "off"]) {
    assertEquals(native.parseNativePreference(value), nativeWanted(value, () => "auto"));
  }
  assertThrows(
    () => native.parseNativePreference("yes", NATIVE_ENV_VAR),
    RangeError,
    `${NATIVE_ENV_VAR} must be one of auto, on, off, got "yes"`,
  );
});

Deno.test("wasmThreadCount: TCONV_THREADS from 1 to 8, else every core up to 8", () => {
  assertEquals(MAX_WASM_THREADS, 8);
  assertEquals(wasmThreadCount(undefined, 2), 2);
  assertEquals(wasmThreadCount(" ", 64), 8);
  assertEquals(wasmThreadCount(undefined, 0), 1);
  assertEquals(wasmThreadCount(" 3 ", 64), 3);
  for (const bad of ["0", "9", "two", "1.5", "-1"]) {
    assertThrows(
      () => wasmThreadCount(bad, 2),
      RangeError,
      `${THREADS_ENV_VAR} must be an integer from 1 to 8, got "${bad}"`,
    );
  }
});

Deno.test("nativeThreadCount: TCONV_NATIVE_THREADS from 1 to 8, else every core up to 8", () => {
  assertEquals(NATIVE_THREADS_ENV_VAR, "TCONV_NATIVE_THREADS");
  assertEquals(nativeThreadCount(undefined, 2), 2);
  assertEquals(nativeThreadCount("", 64), MAX_WASM_THREADS);
  assertEquals(nativeThreadCount(undefined, 0), 1);
  assertEquals(nativeThreadCount(" 3 ", 2), 3); // more than the cores is allowed, as for wasm
  // its own variable: the wasm count does not enter it
  assertEquals(nativeThreadCount(undefined, 4), 4);
  assertEquals(wasmThreadCount("1", 4), 1);
  for (const bad of ["0", "9", "1.5", "-2", "two", "2 threads"]) {
    assertThrows(
      () => nativeThreadCount(bad, 2),
      RangeError,
      `TCONV_NATIVE_THREADS must be an integer from 1 to 8, got "${bad}"`,
    );
  }
});

Deno.test("predictBackend: oneDNN's pool size is part of the backend (it changes rounding)", () => {
  const rec = {
    name: "wasm + oneDNN 2.6.3",
    native: "oneDNN 2.6.3",
    threads: 1,
    nativeThreads: 2,
  };
  const at = (now: Record<string, string>, cpus = 2) =>
    predictBackend(rec, { parameters: {}, before: { TCONV_THREADS: "1" }, now, cpus });
  assertEquals(at({ TCONV_THREADS: "1" }), undefined);
  assertEquals(at({ TCONV_THREADS: "1", TCONV_NATIVE_THREADS: "2" }), undefined);
  assertEquals(
    at({ TCONV_THREADS: "1", TCONV_NATIVE_THREADS: "1" }),
    "wasm + oneDNN 2.6.3; oneDNN 2.6.3 2 → 1 thread",
  );
  // more cores: the default pool grows with them
  assertEquals(at({ TCONV_THREADS: "1" }, 4), "wasm + oneDNN 2.6.3; oneDNN 2.6.3 2 → 4 threads");
  assertEquals(
    at({ TCONV_NATIVE_THREADS: "2" }),
    "wasm + oneDNN 2.6.3, 1 thread → wasm + oneDNN 2.6.3, 2 threads",
  );
  // native off: no pool to compare; an invalid count fails the run, which says so
  assertEquals(at({ TCONV_THREADS: "1", TCONV_NATIVE: "off" }), "wasm + oneDNN 2.6.3 → wasm");
  assertEquals(at({ TCONV_THREADS: "1", TCONV_NATIVE_THREADS: "x" }), undefined);
  // a record from before the separate count ran oneDNN on the wasm threads
  const old = { name: "wasm + oneDNN 2.6.3", native: "oneDNN 2.6.3", threads: 1 };
  assertEquals(
    predictBackend(old, { parameters: {}, before: {}, now: { TCONV_THREADS: "1" }, cpus: 2 }),
    "wasm + oneDNN 2.6.3; oneDNN 2.6.3 1 → 2 threads",
  );
});

Deno.test("predictBackend: what the environment decides, nothing detection decides", () => {
  const onednn = { name: "wasm + oneDNN 2.6.3", native: "oneDNN 2.6.3", threads: 2 };
  const at = (now: Record<string, string>, parameters: Record<string, unknown> = {}) =>
    predictBackend(onednn, { parameters, before: {}, now, cpus: 2 });
  assertEquals(at({}), undefined);
  assertEquals(at({ TCONV_NATIVE: "off" }), "wasm + oneDNN 2.6.3 → wasm");
  // an explicit parameter wins over the variable, as in the run
  assertEquals(at({ TCONV_NATIVE: "off" }, { native: "on" }), undefined);
  assertEquals(at({ TCONV_BACKEND: "cpu" }), "wasm + oneDNN 2.6.3, 2 threads → cpu, 1 thread");
  assertEquals(at({ TCONV_BACKEND: "cpu" }, { backend: "wasm" }), undefined);
  assertEquals(
    at({ TCONV_THREADS: "1" }),
    "wasm + oneDNN 2.6.3, 2 threads → wasm + oneDNN 2.6.3, 1 thread",
  );
  // a backend the run refuses still counts as a change; an invalid thread count predicts no
  // backend (the run fails and says why; the cache names the changed variable itself)
  assertEquals(at({ TCONV_BACKEND: "gpu" }), "wasm + oneDNN 2.6.3 → detected anew (auto → gpu)");
  assertEquals(at({ TCONV_THREADS: "99" }), undefined);
});
