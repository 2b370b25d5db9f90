import { assertEquals, assertMatch, assertNotEquals } from "@std/assert";

const PROBE = new URL("./_wasm_threads_probe.ts", import.meta.url).pathname;

async function probe(threads: string, native = "off") {
  const env = { ...Deno.env.toObject(), TCONV_THREADS: threads, TCONV_NATIVE: native };
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PROBE],
    env,
    signal: AbortSignal.timeout(120_000), // a pool thread keeping the process alive would hang
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("wasm on 2 threads: the threaded build starts under Deno, same bits as 1 thread", async () => {
  const one = await probe("1"), two = await probe("2");
  assertEquals([one.code, two.code], [0, 0], one.stderr + two.stderr);
  const a = JSON.parse(one.stdout), b = JSON.parse(two.stdout);
  assertEquals([a.binary, a.threadsCount], ["tfjs-backend-wasm-simd.wasm", 1]);
  assertEquals([b.binary, b.threadsCount], ["tfjs-backend-wasm-threaded-simd.wasm", 2]);
  assertEquals(b.loss, a.loss);
  assertEquals(b.hash, a.hash, "every gradient bit");
  assertNotEquals(a.hash, 0);
});

// oneDNN splits some reductions by thread, so its results depend on the thread count (within
// float32 rounding); with a given count they are the same bits every run.
Deno.test("wasm + oneDNN on 2 threads: the same bits in two runs", async () => {
  const first = await probe("2", "on"), second = await probe("2", "on");
  assertEquals([first.code, second.code], [0, 0], first.stderr + second.stderr);
  const a = JSON.parse(first.stdout), b = JSON.parse(second.stdout);
  assertEquals([a.threadsCount, a.loss], [2, b.loss]);
  assertEquals(a.hash, b.hash, "every gradient bit");
});

Deno.test("TCONV_THREADS must be an integer from 1 to 8", async () => {
  for (const bad of ["0", "9", "two", "1.5"]) {
    const { code, stderr } = await probe(bad);
    assertNotEquals(code, 0, bad);
    assertMatch(stderr, /TCONV_THREADS must be an integer from 1 to 8, got "/);
  }
});
