import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import {
  decodeMessage,
  encodeMessage,
  makeHeader,
  type Message,
  newConnectionInfo,
  verifySignature,
} from "../lib/notebook/_protocol.ts";
import { encodeFrame, ZmtpSocket } from "../lib/notebook/_zmtp.ts";
import { concatBytes } from "../lib/util/bytes.ts";
import { ExecuteTimeoutError, Kernel, KernelDiedError } from "../lib/notebook/kernel.ts";
import { childKernels, FIXTURES, pgrep, processRunning, stripAnsi } from "./_notebook_helpers.ts";

function kinds(messages: Message[]): string[] {
  return messages.map((m) => m.header.msg_type);
}

function streams(messages: Message[]): string {
  return messages.filter((m) => m.header.msg_type === "stream")
    .map((m) => String(m.content.text)).join("");
}

async function assertGone(kernel: Kernel): Promise<void> {
  assert(!processRunning(kernel.pid), `kernel process ${kernel.pid} is still running`);
  assertEquals(await pgrep(kernel.connectionFile), [], "a process still uses the connection file");
  assertEquals(await childKernels(), [], "a kernel child process is left");
}

Deno.test("protocol: messages are signed, and tampered or unsigned ones are rejected", () => {
  const { key } = newConnectionInfo();
  const msg: Message = {
    header: makeHeader("execute_request", "session"),
    parent_header: {},
    metadata: {},
    content: { code: "1 + 1" },
    buffers: [],
  };
  const frames = encodeMessage(key, msg);
  assertEquals(new TextDecoder().decode(frames[0]), "<IDS|MSG>");
  const ok = decodeMessage(key, [new TextEncoder().encode("identity"), ...frames]);
  assert(ok.ok);
  assertEquals(ok.message.content, { code: "1 + 1" });
  assertEquals(ok.identities.length, 1);

  const tampered = [...frames];
  tampered[5] = new TextEncoder().encode(JSON.stringify({ code: "Deno.exit()" }));
  assertEquals(decodeMessage(key, tampered), { ok: false, reason: "bad-signature" });
  // Frames a socket has already verified are not signed again (the tampered copy shows it).
  assertEquals(decodeMessage(key, tampered, { verified: true }).ok, true);
  assertEquals(decodeMessage("other key", frames), { ok: false, reason: "bad-signature" });
  assertEquals(decodeMessage(key, frames.slice(1)), { ok: false, reason: "no-delimiter" });
  assertEquals(decodeMessage(key, frames.slice(0, 4)), { ok: false, reason: "too-few-frames" });
});

Deno.test("zmtp: short and long frames are encoded as ZMTP 3.0 says", () => {
  const short = encodeFrame(new Uint8Array(3), true);
  assertEquals([...short.slice(0, 2)], [0x01, 3]);
  const long = encodeFrame(new Uint8Array(70_000), false);
  assertEquals(long[0], 0x02);
  assertEquals(Number(new DataView(long.buffer).getBigUint64(1)), 70_000);
  assertEquals(long.length, 9 + 70_000);
  assertEquals(encodeFrame(new Uint8Array(0), false, true)[0], 0x04);
});

function wire(key: string, type: string, content: Record<string, unknown>): Uint8Array {
  const frames = encodeMessage(key, {
    header: makeHeader(type, "s"),
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
  });
  const parts = frames.map((f, i) => encodeFrame(f, i < frames.length - 1));
  return concatBytes(parts);
}

Deno.test("zmtp: a message written into the middle of another is cut out and both arrive", async () => {
  const { key } = newConnectionInfo();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const big = wire(key, "display_data", { data: { "text/plain": "x".repeat(300_000) } });
  // split points: inside the delimiter frame, at frame boundaries, inside the content, near the end
  const splits = [5, 11, 13, 79, 2000, 150_000, big.length - 2];
  const server = (async () => {
    const conn = await listener.accept();
    const greeting = new Uint8Array(64);
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    greeting.set(new TextEncoder().encode("NULL"), 12);
    await conn.write(greeting);
    await conn.write(
      encodeFrame(new Uint8Array([5, ...new TextEncoder().encode("READY")]), false, true),
    );
    for (const [i, split] of splits.entries()) {
      const small = wire(key, "status", { execution_state: "idle", i });
      for (const chunk of [big.subarray(0, split), small, big.subarray(split)]) {
        await conn.write(chunk);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    // garbage that holds no message, then a valid one
    await conn.write(new Uint8Array([0x01, 0x09, 0x3c, 0xff, 0xff, 0xff]));
    await conn.write(wire(key, "status", { execution_state: "busy" }));
    conn.close();
  })();
  const socket = await ZmtpSocket.connect("127.0.0.1", port, "SUB", {
    verify: (frames) => verifySignature(key, frames),
  });
  const types: string[] = [];
  while (true) {
    const frames = await socket.receive();
    if (!frames) break;
    const m = decodeMessage(key, frames);
    assert(m.ok, "an invalid message was delivered");
    types.push(
      `${m.message.header.msg_type}:${m.message.content.i ?? m.message.content.execution_state}`,
    );
    if (m.message.header.msg_type === "display_data") {
      assertEquals(
        (m.message.content.data as Record<string, string>)["text/plain"].length,
        300_000,
      );
    }
  }
  await server;
  listener.close();
  assertEquals(types, [
    ...splits.flatMap((_, i) => ["display_data:undefined", `status:${i}`]),
    "status:busy",
  ]);
  assertEquals(socket.repaired, splits.length);
  assertEquals(socket.skipped, 1);
});

Deno.test("kernel: executes code, routes outputs by parent, drains late output, interrupts", async (t) => {
  const kernel = await Kernel.start({ cwd: FIXTURES });
  try {
    assertEquals(kernel.info.implementation, "Deno kernel");
    assert(kernel.alive);

    await t.step("streams and result of one execution, in order", async () => {
      const r = await kernel.execute(
        `console.log("a"); console.error("b"); console.log("c"); 40 + 2`,
      );
      assertEquals(r.status, "ok");
      assertEquals(kinds(r.messages), [
        "execute_input",
        "stream",
        "stream",
        "stream",
        "execute_result",
      ]);
      assertEquals(streams(r.messages), "a\nb\nc\n");
      const result = r.messages.at(-1)!;
      assertEquals(
        stripAnsi(String((result.content.data as Record<string, string>)["text/plain"])),
        "42",
      );
      assertEquals(result.content.execution_count, r.executionCount);
      for (const m of r.messages) assertEquals(m.parent_header.msg_id, r.msgId);
    });

    await t.step("the kernel runs in the given cwd", async () => {
      const r = await kernel.execute(`Deno.cwd()`);
      const text = (r.messages.at(-1)!.content.data as Record<string, string>)["text/plain"];
      assertEquals(stripAnsi(text), JSON.stringify(FIXTURES.replace(/\/$/, "")));
    });

    await t.step(
      "output after the reply and after idle still belongs to its execution",
      async () => {
        const seen: string[] = [];
        const r = await kernel.execute(
          `setTimeout(() => console.log("late 1"), 20); setTimeout(() => console.log("late 2"), 60); "now"`,
          { onMessage: (m) => seen.push(m.header.msg_type) },
        );
        assertEquals(streams(r.messages), "late 1\nlate 2\n");
        // Output the kernel published under the flush probe that followed is re-parented: every
        // message of an execution names it as its parent (seen failing before, at random).
        for (const m of r.messages) assertEquals(m.parent_header.msg_id, r.msgId);
        // onMessage also sees the status messages (busy, idle) that `messages` leaves out.
        assertEquals(seen.filter((t) => t !== "status"), kinds(r.messages));
        assert(seen.includes("status"), seen.join(" "));
        const next = await kernel.execute(`"next"`);
        assertEquals(kinds(next.messages), ["execute_input", "execute_result"]);
      },
    );

    await t.step(
      "an output arriving after execute() resolved is appended to its execution",
      async () => {
        const r = await kernel.execute(`setTimeout(() => console.log("very late"), 600); 1`);
        assertEquals(streams(r.messages), "");
        await new Promise((res) => setTimeout(res, 800));
        await kernel.drain();
        assertEquals(streams(r.messages), "very late\n");
      },
    );

    await t.step("errors come back as error status with an error message", async () => {
      const r = await kernel.execute(`throw new TypeError("nope")`);
      assertEquals(r.status, "error");
      assertEquals(r.reply.ename, "TypeError");
      const err = r.messages.find((m) => m.header.msg_type === "error")!;
      assertEquals(err.content.evalue, "nope");
    });

    await t.step("a busy loop times out and can be interrupted", async () => {
      const started = performance.now();
      const e = await assertRejects(
        () => kernel.execute(`console.log("spinning"); while (true) {}`, { timeoutMs: 1000 }),
        ExecuteTimeoutError,
      );
      assertGreater(performance.now() - started, 900);
      assertStringIncludes(e.message, "timed out after 1 s");
      assert(await kernel.interrupt(3000), "interrupt did not stop the loop");
      assertEquals(streams(e.messages), "spinning\n");
      const r = await kernel.execute(`"still alive"`);
      assertEquals(r.status, "ok");
    });

    await t.step("a 20 MB display arrives intact, three times", async () => {
      for (let i = 0; i < 3; i++) {
        const r = await kernel.execute(
          `await Deno.jupyter.display({ "text/plain": "y".repeat(20_000_000) }, { raw: true });
          { const t = Date.now(); while (Date.now() - t < 30) {} }
          console.log("after");`,
        );
        assertEquals(kinds(r.messages), ["execute_input", "display_data", "stream"]);
        const data = r.messages[1].content.data as Record<string, string>;
        assertEquals(data["text/plain"].length, 20_000_000);
      }
    });

    await t.step("no message was dropped for a bad signature", () => {
      assertEquals(Object.values(kernel.dropped).reduce((a, b) => a + b, 0), 0);
      assertEquals(kernel.streamRepairs.skipped, 0);
    });
  } finally {
    await kernel.shutdown();
  }
  assert(!kernel.alive);
  await assertGone(kernel);
  await kernel.shutdown(); // idempotent
});

Deno.test("kernel: a kernel that exits mid-execution rejects with KernelDiedError at once", async () => {
  const kernel = await Kernel.start();
  try {
    const started = performance.now();
    const e = await assertRejects(
      () => kernel.execute(`Deno.exit(3)`, { timeoutMs: 20_000 }),
      KernelDiedError,
    );
    assertGreater(5000, performance.now() - started);
    assertEquals(e.exit.code, 3);
    assertStringIncludes(e.message, "the kernel died (exited with code 3)");
    assert(!kernel.alive);
    await assertRejects(() => kernel.execute(`1`), KernelDiedError, "cannot execute");
  } finally {
    await kernel.shutdown();
  }
  await assertGone(kernel);
});

Deno.test("kernel: kill() ends the process and rejects the pending execution", async () => {
  const kernel = await Kernel.start();
  try {
    const pending = kernel.execute(`await new Promise((r) => setTimeout(r, 60_000))`);
    await new Promise((r) => setTimeout(r, 300));
    kernel.kill("test kill");
    const e = await assertRejects(() => pending, KernelDiedError);
    assertStringIncludes(e.message, "test kill");
  } finally {
    await kernel.shutdown();
  }
  await assertGone(kernel);
});

Deno.test("kernel: a kernel that cannot start is reported, with nothing left behind", async () => {
  const before = await childKernels();
  await assertRejects(
    () => Kernel.start({ cwd: "/nonexistent-dir-for-kernel-test" }),
    Error,
  );
  assertEquals(await childKernels(), before);
});
