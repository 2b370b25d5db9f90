import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ExecuteTimeoutError, Kernel } from "../lib/notebook/kernel.ts";
import {
  installKernelSpec,
  jupyterDataPath,
  KERNEL_NAME,
  type KernelSpec,
  PINNED_DENO,
  userDataDir,
} from "../lib/notebook/kernelspec.ts";
import { childKernels } from "./_notebook_helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno task kernel <args>` with only the given environment (plus PATH), so that the
 * developer's own Jupyter directories never leak in.
 */
async function kernelTask(args: string[], env: Record<string, string>): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "kernel", ...args],
    cwd: ROOT,
    env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function inTempDir(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "kernelspec-test-" });
  try {
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function readSpec(dir: string): Promise<KernelSpec> {
  return JSON.parse(await Deno.readTextFile(join(dir, "kernel.json")));
}

Deno.test("kernelspec: every notebook names the kernelspec that `deno task kernel` installs", async () => {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, "notebooks"))) {
    if (!e.name.endsWith(".ipynb")) continue;
    const nb = JSON.parse(await Deno.readTextFile(join(ROOT, "notebooks", e.name)));
    assertEquals(nb.metadata?.kernelspec?.name, KERNEL_NAME, `${e.name} names another kernel`);
    names.push(e.name);
  }
  assert(names.length >= 3, `found only ${names}`);
});

Deno.test("kernelspec: the data path follows jupyter_core's order and variables", () => {
  const home = "/home/ada";
  assertEquals(userDataDir({ HOME: home }, "linux"), "/home/ada/.local/share/jupyter");
  assertEquals(userDataDir({ HOME: home, XDG_DATA_HOME: "/xdg" }, "linux"), "/xdg/jupyter");
  assertEquals(
    userDataDir({ HOME: home, XDG_DATA_HOME: "" }, "linux"),
    `${home}/.local/share/jupyter`,
  );
  assertEquals(
    userDataDir({ HOME: home, JUPYTER_DATA_DIR: "/jd", XDG_DATA_HOME: "/x" }, "linux"),
    "/jd",
  );
  assertEquals(userDataDir({ HOME: home }, "darwin"), "/home/ada/Library/Jupyter");
  assertEquals(
    jupyterDataPath({ HOME: home, JUPYTER_PATH: "/a:/b", JUPYTER_DATA_DIR: "/jd" }, "linux"),
    [
      { path: "/a", source: "JUPYTER_PATH" },
      { path: "/b", source: "JUPYTER_PATH" },
      { path: "/jd", source: "user (JUPYTER_DATA_DIR)" },
      { path: "/usr/local/share/jupyter", source: "system" },
      { path: "/usr/share/jupyter", source: "system" },
    ],
  );
});

Deno.test("kernel task: install, status, reinstall and uninstall in JUPYTER_DATA_DIR", () =>
  inTempDir(async (tmp) => {
    const env = { HOME: join(tmp, "home"), JUPYTER_DATA_DIR: join(tmp, "data") };
    const dir = join(tmp, "data", "kernels", KERNEL_NAME);

    const none = await kernelTask(["status"], env);
    assertEquals(none.code, 1, none.stdout + none.stderr);
    assertStringIncludes(none.stdout, `No "${KERNEL_NAME}" kernelspec is installed`);
    assertStringIncludes(none.stdout, join(tmp, "data", "kernels"));
    assertStringIncludes(none.stdout, "deno task kernel install");

    const installed = await kernelTask(["install"], env);
    assertEquals(installed.code, 0, installed.stdout + installed.stderr);
    assertStringIncludes(installed.stdout, dir);
    const spec = await readSpec(dir);
    assertEquals(spec.argv, [
      Deno.execPath(),
      "jupyter",
      "--kernel",
      "--conn",
      "{connection_file}",
    ]);
    assertEquals(spec.interrupt_mode, "message");
    // One thread by default: a Stop inside a multi-threaded wasm kernel can lock its pool.
    assertEquals(spec.env, { TCONV_THREADS: "1" });
    assertEquals(spec.language, "typescript");
    assertEquals(spec.display_name, "Deno");
    // Deno's own logos, as `deno jupyter --install` ships them.
    const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assertEquals(files, ["kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]);
    const png = await Deno.readFile(join(dir, "logo-64x64.png"));
    assertEquals([...png.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"

    const status = await kernelTask(["status"], env);
    assertEquals(status.code, 0, status.stdout + status.stderr);
    assertStringIncludes(status.stdout, join(dir, "kernel.json"));
    assertStringIncludes(status.stdout, `${Deno.execPath()} (${Deno.version.deno}`);
    assertStringIncludes(status.stdout, "interrupt mode: message");
    // Both pools: wasm on one thread, oneDNN (which a Stop cannot interrupt) on every core.
    const cores = Math.min(8, navigator.hardwareConcurrency);
    assertStringIncludes(status.stdout, "wasm threads:   1 (TCONV_THREADS=1)\n");
    assertStringIncludes(
      status.stdout,
      `oneDNN threads: ${cores} (TCONV_NATIVE_THREADS not set: every core, at most 8)\n`,
    );
    assertNotMatch(status.stdout + status.stderr, /WARNING/);

    // A second install replaces the first in one rename and leaves nothing else behind.
    await Deno.writeTextFile(join(dir, "stale.txt"), "from an older install");
    const again = await kernelTask(["install", "--user"], env);
    assertEquals(again.code, 0, again.stdout + again.stderr);
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(tmp, "data", "kernels")))).map((e) => e.name),
      [KERNEL_NAME],
    );
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).length, 4, "stale.txt survived");

    const removed = await kernelTask(["uninstall"], env);
    assertEquals(removed.code, 0, removed.stdout + removed.stderr);
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(tmp, "data", "kernels")))).length,
      0,
      "uninstall left something",
    );
    assertEquals(
      (await Array.fromAsync(Deno.readDir(join(tmp, "data")))).map((e) => e.name),
      ["kernels"],
      "a temporary directory was left in the data directory",
    );
    const twice = await kernelTask(["uninstall"], env);
    assertEquals(twice.code, 1);
    assertStringIncludes(twice.stderr, `no "${KERNEL_NAME}" kernelspec in ${dir}`);
  }));

Deno.test("kernel task: the default is the user directory, honouring XDG_DATA_HOME", () =>
  inTempDir(async (tmp) => {
    const env = { HOME: join(tmp, "home"), XDG_DATA_HOME: join(tmp, "xdg") };
    const r = await kernelTask(["install"], env);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const spec = await readSpec(join(tmp, "xdg", "jupyter", "kernels", KERNEL_NAME));
    assertEquals(spec.interrupt_mode, "message");
    const s = await kernelTask(["status"], env);
    assertEquals(s.code, 0, s.stdout + s.stderr);
    assertStringIncludes(s.stdout, `${join(tmp, "xdg", "jupyter")} (user)`);
  }));

Deno.test("kernel task: status warns about the spec `deno jupyter --install` writes, and names the fix", () =>
  inTempDir(async (tmp) => {
    const home = join(tmp, "home");
    // What a user has after following Deno's own instructions: no interrupt_mode.
    const deno = await new Deno.Command(Deno.execPath(), {
      args: ["jupyter", "--install"],
      env: { HOME: home, PATH: Deno.env.get("PATH") ?? "" },
      clearEnv: true,
      cwd: tmp,
      stdout: "null",
      stderr: "null",
    }).output();
    assert(deno.success, "deno jupyter --install failed");
    const userSpec = join(home, ".local", "share", "jupyter", "kernels", KERNEL_NAME);
    assertEquals((await readSpec(userSpec)).interrupt_mode, undefined);

    const env = { HOME: home };
    const s = await kernelTask(["status"], env);
    assertEquals(s.code, 1, s.stdout + s.stderr);
    assertStringIncludes(s.stdout, "interrupt mode: signal (not set)");
    assertMatch(s.stderr, /WARNING: .*no "interrupt_mode".*SIGINT.*Fix: deno task kernel install/s);

    const fixed = await kernelTask(["install"], env);
    assertEquals(fixed.code, 0, fixed.stdout + fixed.stderr);
    assertEquals((await readSpec(userSpec)).interrupt_mode, "message");
    const after = await kernelTask(["status"], env);
    assertEquals(after.code, 0, after.stdout + after.stderr);
  }));

Deno.test("kernel task: --prefix installs into PREFIX/share/jupyter; status follows JUPYTER_PATH first", () =>
  inTempDir(async (tmp) => {
    const prefix = join(tmp, "venv");
    const env = { HOME: join(tmp, "home"), JUPYTER_DATA_DIR: join(tmp, "data") };
    assertEquals((await kernelTask(["install"], env)).code, 0);
    const r = await kernelTask(["install", "--prefix", prefix], env);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const dir = join(prefix, "share", "jupyter", "kernels", KERNEL_NAME);
    assertEquals((await readSpec(dir)).interrupt_mode, "message");

    // On JUPYTER_PATH the prefix comes before the user directory and hides its spec.
    const path = { ...env, JUPYTER_PATH: join(prefix, "share", "jupyter") };
    const s = await kernelTask(["status"], path);
    assertEquals(s.code, 0, s.stdout + s.stderr);
    assertStringIncludes(s.stdout, `kernelspec "${KERNEL_NAME}": ${join(dir, "kernel.json")}`);
    assertStringIncludes(
      s.stdout,
      `also installed, hidden by the one above: ${join(tmp, "data", "kernels", KERNEL_NAME)}`,
    );

    // A spec there without interrupt_mode: the fix names the prefix.
    const spec = await readSpec(dir);
    delete spec.interrupt_mode;
    await Deno.writeTextFile(join(dir, "kernel.json"), JSON.stringify(spec));
    const warned = await kernelTask(["status"], path);
    assertEquals(warned.code, 1);
    assertStringIncludes(warned.stderr, `Fix: deno task kernel install --prefix ${prefix}`);

    assertEquals((await kernelTask(["uninstall", `--prefix=${prefix}`], env)).code, 0);
    assertEquals(
      await Array.fromAsync(Deno.readDir(join(prefix, "share", "jupyter", "kernels"))),
      [],
    );
  }));

Deno.test("kernel task: a spec run by another Deno is reported with its version", () =>
  inTempDir(async (tmp) => {
    const env = { HOME: join(tmp, "home"), JUPYTER_DATA_DIR: join(tmp, "data") };
    const fake = join(tmp, "old-deno");
    await Deno.writeTextFile(fake, "#!/bin/sh\necho 'deno 2.1.0 (stable, release)'\n");
    await Deno.chmod(fake, 0o755);
    const dir = join(tmp, "data", "kernels", KERNEL_NAME);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "kernel.json"),
      JSON.stringify({
        argv: [fake, "jupyter", "--kernel", "--conn", "{connection_file}"],
        display_name: "Deno",
        language: "typescript",
        interrupt_mode: "message",
      }),
    );
    const s = await kernelTask(["status"], env);
    assertEquals(s.code, 1, s.stdout + s.stderr);
    assertStringIncludes(s.stdout, `${fake} (2.1.0, differs from the pinned ${PINNED_DENO})`);
    assertStringIncludes(s.stderr, `npx -y deno@${PINNED_DENO} task kernel install`);
  }));

Deno.test("kernel task: bad arguments are refused with a reason and exit code 2", async () => {
  const env = { HOME: "/nonexistent", JUPYTER_DATA_DIR: "/nonexistent/data" };
  const cases: [string[], string][] = [
    [[], "missing command"],
    [["instal"], 'unknown command "instal"'],
    [["install", "--user", "--prefix", "/x"], "--user and --prefix exclude each other"],
    [["install", "--prefix"], "--prefix needs a directory"],
    [["install", "--sys-prefix"], 'unknown argument "--sys-prefix"'],
    [["status", "--user"], "status takes no arguments"],
    [["install", "--threads", "0"], '--threads needs "auto" or an integer from 1 to 8, got "0"'],
    [["install", "--threads=many"], 'got "many"'],
    [["install", "--threads"], 'got "undefined"'],
    [["uninstall", "--threads", "2"], 'unknown argument "--threads"'],
    [["uninstall", "--native-threads", "2"], 'unknown argument "--native-threads"'],
  ];
  for (const [args, message] of cases) {
    const r = await kernelTask(args, env);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, message);
    assertStringIncludes(r.stderr, "usage: deno task kernel");
  }
});

Deno.test("kernel task: --threads sets the kernel's TCONV_THREADS; auto leaves it to every core", () =>
  inTempDir(async (tmp) => {
    const env = { HOME: join(tmp, "home"), JUPYTER_DATA_DIR: join(tmp, "data") };
    const dir = join(tmp, "data", "kernels", KERNEL_NAME);
    const two = await kernelTask(["install", "--threads", "2"], env);
    assertEquals(two.code, 0, two.stdout + two.stderr);
    assertStringIncludes(two.stdout, "TCONV_THREADS=2");
    assertEquals((await readSpec(dir)).env, { TCONV_THREADS: "2" });
    const auto = await kernelTask(["install", "--threads=auto"], env);
    assertEquals(auto.code, 0, auto.stdout + auto.stderr);
    assertEquals((await readSpec(dir)).env, undefined);
    const status = await kernelTask(["status"], env);
    assertEquals(status.code, 0, status.stdout + status.stderr);
    const cores = Math.min(8, navigator.hardwareConcurrency);
    assertStringIncludes(
      status.stdout,
      `wasm threads:   ${cores} (TCONV_THREADS not set: every core`,
    );
  }));

Deno.test("kernel task: --native-threads sets oneDNN's pool apart from wasm's; status shows both", () =>
  inTempDir(async (tmp) => {
    const env = { HOME: join(tmp, "home"), JUPYTER_DATA_DIR: join(tmp, "data") };
    const dir = join(tmp, "data", "kernels", KERNEL_NAME);
    const one = await kernelTask(["install", "--native-threads", "1"], env);
    assertEquals(one.code, 0, one.stdout + one.stderr);
    assertStringIncludes(one.stdout, "TCONV_THREADS=1, TCONV_NATIVE_THREADS=1.");
    assertEquals((await readSpec(dir)).env, { TCONV_THREADS: "1", TCONV_NATIVE_THREADS: "1" });
    const both = await kernelTask(["install", "--threads=3", "--native-threads=5"], env);
    assertEquals(both.code, 0, both.stdout + both.stderr);
    const status = await kernelTask(["status"], env);
    assertEquals(status.code, 0, status.stdout + status.stderr);
    assertStringIncludes(status.stdout, "wasm threads:   3 (TCONV_THREADS=3)\n");
    assertStringIncludes(status.stdout, "oneDNN threads: 5 (TCONV_NATIVE_THREADS=5)\n");
    // A spec edited by hand with a value the kernel would refuse is named as such.
    const spec = await readSpec(dir);
    await Deno.writeTextFile(
      join(dir, "kernel.json"),
      JSON.stringify({ ...spec, env: { TCONV_NATIVE_THREADS: "lots" } }),
    );
    const bad = await kernelTask(["status"], env);
    assertStringIncludes(
      bad.stdout,
      'oneDNN threads: invalid ("lots") (TCONV_NATIVE_THREADS=lots)',
    );
    const usage = await kernelTask(["install", "--native-threads", "0"], env);
    assertEquals(usage.code, 2);
    assertStringIncludes(
      usage.stderr,
      '--native-threads needs "auto" or an integer from 1 to 8, got "0"',
    );
  }));

Deno.test("installKernelSpec: a failed install leaves the installed spec as it was", () =>
  inTempDir(async (tmp) => {
    const dir = await installKernelSpec({ dataDir: tmp });
    const before = await Deno.readTextFile(join(dir, "kernel.json"));
    await assertRejects(
      () => installKernelSpec({ dataDir: tmp, denoPath: "/bin/false" }),
      Error,
      "that is not a working Deno",
    );
    assertEquals(await Deno.readTextFile(join(dir, "kernel.json")), before);
    assertEquals((await Array.fromAsync(Deno.readDir(join(tmp, "kernels")))).length, 1);
  }));

Deno.test("kernelspec: the installed argv starts a kernel that runs cells and survives an interrupt", () =>
  inTempDir(async (tmp) => {
    const spec = await readSpec(await installKernelSpec({ dataDir: tmp }));
    const kernel = await Kernel.start({ argv: spec.argv, cwd: tmp });
    try {
      assertEquals((await kernel.execute("let kept = 41;")).status, "ok");
      // Stop as a frontend does with "interrupt_mode": "message": interrupt_request on control.
      await assertRejects(
        () => kernel.execute(`console.log("spinning"); while (true) {}`, { timeoutMs: 1000 }),
        ExecuteTimeoutError,
      );
      assert(await kernel.interrupt(5000), "the interrupted cell did not end");
      const next = await kernel.execute(
        `Deno.jupyter.display({ "text/plain": String(kept + 1) }, { raw: true })`,
      );
      assertEquals(next.status, "ok");
      const shown = next.messages.find((m) => m.header.msg_type === "display_data");
      assertEquals((shown?.content.data as Record<string, string>)["text/plain"], "42");
    } finally {
      await kernel.shutdown();
    }
    assertEquals(await childKernels(), []);
  }));

// The limitation docs/interactive.md describes ("What Stop does"): an interrupt that reaches a cell
// after its first `await` never ends it. If this starts failing, Deno fixed it: update that doc.
Deno.test("kernelspec: (Deno 2.9 limitation) a cell interrupted after an await never ends", () =>
  inTempDir(async (tmp) => {
    const spec = await readSpec(await installKernelSpec({ dataDir: tmp }));
    const kernel = await Kernel.start({ argv: spec.argv, cwd: tmp });
    try {
      await assertRejects(
        () =>
          kernel.execute(`await new Promise((r) => setTimeout(r, 60_000)); "woke up"`, {
            timeoutMs: 500,
          }),
        ExecuteTimeoutError,
      );
      // The pending timer holds the cell's promise, so not even garbage collection can free the
      // kernel (docs/interactive.md): it stays busy.
      assertEquals(await kernel.interrupt(4000), false);
      await assertRejects(() => kernel.execute("1 + 1", { timeoutMs: 1000 }), ExecuteTimeoutError);
    } finally {
      kernel.kill("the test is done with a hung kernel");
      await kernel.shutdown();
    }
  }));
