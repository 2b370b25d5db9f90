/**
 * Kernel start against other processes on its ports (issue 17): a port taken between the choice
 * and the kernel's bind, another kernel on the ports, a stranger that resets the connection.
 * Each test puts the interference in place between the choice of ports and the kernel's start:
 * the kernel is started through a wrapper script (the `denoPath` option) that, on its first
 * call only, hands the connection file to the test and waits for a go.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  choosePorts,
  type ConnectionInfo,
  decodeMessage,
  encodeMessage,
  makeHeader,
  portRange,
} from "../lib/notebook/_protocol.ts";
import { ZmtpSocket } from "../lib/notebook/_zmtp.ts";
import { Kernel } from "../lib/notebook/kernel.ts";
import { childKernels, stripAnsi } from "./_notebook_helpers.ts";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A wrapper for `denoPath` whose first call waits while `act` interferes with its ports. */
async function interferingStart(
  act: (connectionFile: string, conn: ConnectionInfo) => Promise<void>,
): Promise<{ kernel: Kernel; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kernel-ports-" });
  const wrapper = `${dir}/deno`;
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh
# "$@" is: jupyter --kernel --conn FILE
if mkdir "${dir}/first" 2>/dev/null; then
  printf '%s' "$4" > "${dir}/request.tmp" && mv "${dir}/request.tmp" "${dir}/request"
  while [ ! -e "${dir}/go" ]; do sleep 0.02; done
fi
exec "${Deno.execPath()}" "$@"
`,
  );
  await Deno.chmod(wrapper, 0o755);
  const interference = (async () => {
    while (true) {
      try {
        const file = await Deno.readTextFile(`${dir}/request`);
        await act(file, JSON.parse(await Deno.readTextFile(file)));
        return;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        await delay(20);
      } finally {
        // A failing act still lets the kernel go on (the test then reports the act's error).
        if (await Deno.stat(`${dir}/request`).then(() => true, () => false)) {
          await Deno.writeTextFile(`${dir}/go`, "");
        }
      }
    }
  })();
  const started = Kernel.start({ denoPath: wrapper, startupTimeoutMs: 15_000 });
  const [kernel, acted] = await Promise.allSettled([started, interference]);
  if (kernel.status === "fulfilled" && acted.status === "fulfilled") {
    return { kernel: kernel.value, dir };
  }
  // Leave nothing behind, then report the first failure.
  if (kernel.status === "fulfilled") await kernel.value.shutdown();
  await Deno.remove(dir, { recursive: true });
  throw acted.status === "rejected" ? acted.reason : (kernel as PromiseRejectedResult).reason;
}

/** The next message on `socket`, decoded with `key`; fails after 20 s instead of hanging. */
async function answer(socket: ZmtpSocket, key: string) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const raw = await Promise.race([
    socket.receive(),
    new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), 20_000)),
  ]);
  clearTimeout(timer);
  if (raw === "timeout") throw new Error("the other kernel did not answer within 20 s");
  if (raw === null) throw new Error("the other kernel closed the connection");
  return decodeMessage(key, raw);
}

/** Runs `1 + 1` and checks the answer: the kernel the client talks to is its own and works. */
async function assertWorks(kernel: Kernel): Promise<void> {
  const r = await kernel.execute(`console.log("own output"); 1 + 1`, { timeoutMs: 20_000 });
  assertEquals(r.status, "ok");
  const texts = r.messages.map((m) =>
    stripAnsi(
      String(m.content.text ?? (m.content.data as Record<string, unknown>)?.["text/plain"] ?? ""),
    )
  );
  assertEquals(texts.filter(Boolean), ["own output\n", "2"]);
}

Deno.test("kernel ports: chosen ports are distinct, free, outside the ephemeral range", () => {
  const range = portRange();
  assert(range, "this machine's ephemeral range leaves no room");
  const [low, high] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range")
    .trim().split(/\s+/).map(Number);
  for (let i = 0; i < 20; i++) {
    const ports = choosePorts(5);
    assertEquals(new Set(ports).size, 5);
    for (const port of ports) {
      assert(port < low || port > high, `port ${port} is in the ephemeral range ${low}-${high}`);
      assert(port >= range[0] && port <= range[1], `port ${port} is outside ${range}`);
      Deno.listen({ hostname: "127.0.0.1", port }).close(); // still free
    }
  }
});

Deno.test("kernel ports: a port taken before the kernel binds it: the kernel starts on new ports and works", async () => {
  const before = await childKernels();
  let holder: Deno.Listener | undefined;
  const { kernel, dir } = await interferingStart((_, conn) => {
    // Another process's socket on the control port, as a port check of another client would be.
    holder = Deno.listen({ hostname: conn.ip, port: conn.control_port });
    return Promise.resolve();
  });
  try {
    assert(holder, "the interference did not run");
    assertEquals(kernel.startAttempts, 2);
    await assertWorks(kernel);
  } finally {
    await kernel.shutdown();
    holder?.close();
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(await childKernels(), before);
});

Deno.test("kernel ports: another kernel on the ports is not talked to; the kernel starts on new ports", async () => {
  const before = await childKernels();
  const foreignKey = "f".repeat(64);
  let foreign: Deno.ChildProcess | undefined;
  let foreignShell: ZmtpSocket | undefined;
  let foreignConn: ConnectionInfo | undefined;
  const cleanUp = async () => {
    foreignShell?.close();
    foreign?.kill("SIGKILL");
    await foreign?.status;
  };
  const { kernel, dir } = await interferingStart(async (file, conn) => {
    // The other kernel gets the chosen ports; ours, moved to new ones, is never reached.
    foreignConn = { ...conn, key: foreignKey };
    await Deno.writeTextFile(`${file}.foreign.json`, JSON.stringify(foreignConn));
    foreign = new Deno.Command(Deno.execPath(), {
      args: ["jupyter", "--kernel", "--conn", `${file}.foreign.json`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const [shell, iopub, stdin, control, hb] = choosePorts(5, conn.ip);
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...conn,
        shell_port: shell,
        iopub_port: iopub,
        stdin_port: stdin,
        control_port: control,
        hb_port: hb,
      }),
    );
    // The other kernel is busy printing (its owner's training run, say).
    foreignShell = await ZmtpSocket.connect(conn.ip, conn.shell_port, "DEALER");
    await foreignShell.send(encodeMessage(foreignKey, {
      header: makeHeader("execute_request", "foreign"),
      parent_header: {},
      metadata: {},
      content: { code: `setInterval(() => console.log("foreign output"), 50); 0`, silent: false },
      buffers: [],
    }));
    const reply = await answer(foreignShell, foreignKey);
    assert(reply.ok && reply.message.content.status === "ok", "the other kernel did not run");
  }).catch(async (e) => {
    await cleanUp(); // the other kernel too
    throw e;
  });
  try {
    assertEquals(kernel.startAttempts, 2);
    await assertWorks(kernel);
    // The other kernel counted only its owner's execution: it ran nothing of ours.
    await foreignShell!.send(encodeMessage(foreignKey, {
      header: makeHeader("execute_request", "foreign"),
      parent_header: {},
      metadata: {},
      content: { code: "1", silent: false },
      buffers: [],
    }));
    const reply = await answer(foreignShell!, foreignKey);
    assert(reply.ok);
    assertEquals(reply.message.content.execution_count, 2);
  } finally {
    await kernel.shutdown();
    await cleanUp();
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(await childKernels(), before);
});

Deno.test("kernel ports: a stranger that accepts and drops connections on a port is waited out", async () => {
  const before = await childKernels();
  let dropped = 0;
  const { kernel, dir } = await interferingStart(async (_, conn) => {
    // A stranger holds the heartbeat port for a moment and drops what connects (a port check
    // of another client does that): the connection is reset or closed during the handshake.
    const stranger = Deno.listen({ hostname: conn.ip, port: conn.hb_port });
    const until = Date.now() + 10_000;
    while (dropped < 2 && Date.now() < until) {
      const accepted = await Promise.race([stranger.accept(), delay(200).then(() => null)]);
      if (!accepted) continue;
      accepted.close();
      dropped++;
    }
    stranger.close();
  });
  try {
    assert(dropped >= 2, `the client connected ${dropped} times to the stranger`);
    assertEquals(kernel.startAttempts, 1);
    await assertWorks(kernel);
  } finally {
    await kernel.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(await childKernels(), before);
});

Deno.test("kernel ports: a peer that accepts and never answers the handshake is given up at the deadline", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const outcome = await Promise.race([
      ZmtpSocket.connect("127.0.0.1", port, "DEALER", { timeoutMs: 500 }).then(
        (s) => (s.close(), "connected"),
        (e) => String(e),
      ),
      new Promise((r) => timer = setTimeout(() => r("still waiting after 10 s"), 10_000)),
    ]);
    assertStringIncludes(String(outcome), `no ZMTP handshake with 127.0.0.1:${port}`);
    assert(performance.now() - started < 10_000);
  } finally {
    clearTimeout(timer);
    for (const conn of held) conn.close();
    listener.close();
    await accepting.catch(() => {});
  }
});
