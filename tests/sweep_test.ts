import { hostname } from "node:os";
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { checkSweep, expandGrid, GridError, parseGridArg } from "../lib/sweep/grid.ts";
import { arraySpec, splitArgs } from "../lib/sweep/slurm.ts";
import { threadsPerRun } from "../lib/sweep/local.ts";
import { runArgs } from "../lib/sweep/execute.ts";
import { planSweep } from "../lib/sweep/manifest.ts";
import { ParameterError } from "../lib/notebook/parameters.ts";
import { fixture } from "./_notebook_helpers.ts";
import {
  executions,
  finish,
  manifest,
  startSweep,
  sweep,
  SWEEP_FIXTURE,
} from "./_sweep_helpers.ts";

Deno.test("grid: values split at top-level commas, product in order, first axis slowest", () => {
  assertEquals(parseGridArg("seeds=[0,1],[2]"), { name: "seeds", values: ["[0,1]", "[2]"] });
  assertEquals(parseGridArg(`tag="a,b",c`).values, [`"a,b"`, "c"]);
  assertEquals(
    expandGrid([parseGridArg("a=1,2"), parseGridArg("b=x,y,z")]).map((r) => r.join(" ")),
    ["a=1 b=x", "a=1 b=y", "a=1 b=z", "a=2 b=x", "a=2 b=y", "a=2 b=z"],
  );
  assertThrows(() => parseGridArg("a=1,,2"), GridError, "empty value");
  assertThrows(() => parseGridArg("a=1,1"), GridError, "given twice");
  assertThrows(() => parseGridArg("a"), ParameterError, "expected name=value");
});

Deno.test("grid: checked against the notebook's parameters cell before anything runs", async () => {
  const nb = await fixture("sweep.ipynb");
  const runs = checkSweep(nb, [parseGridArg("seed=1,2")], ["layer=transposed"], ["runDir"]);
  assertEquals(runs, [{ layer: "transposed", seed: 1 }, { layer: "transposed", seed: 2 }]);
  const unknown = assertThrows(
    () => checkSweep(nb, [parseGridArg("sed=1,2")], [], []),
    ParameterError,
  );
  assertStringIncludes(unknown.message, 'unknown parameter "sed"');
  assertStringIncludes(unknown.message, "seed = 0 (number)"); // the notebook's parameter list
  assertThrows(
    () => checkSweep(nb, [parseGridArg("seed=1,two")], [], []),
    ParameterError,
    'parameter "seed" expects a number',
  );
  assertThrows(
    () => checkSweep(nb, [parseGridArg("seed=1")], ["seed=2"], []),
    GridError,
    "both in --grid and -p",
  );
  assertThrows(
    () => checkSweep(nb, [parseGridArg("runDir=a,b")], [], ["runDir"]),
    GridError,
    "set by the sweep itself",
  );
  assertThrows(() => checkSweep(nb, [], [], []), GridError, "at least one --grid");
});

Deno.test("sweep helpers: thread shares, Slurm array specs, --slurm-args splitting, run args", () => {
  assertEquals(threadsPerRun(2, 2), 1);
  assertEquals(threadsPerRun(1, 2), 2);
  assertEquals(threadsPerRun(3, 16), 5);
  assertEquals(threadsPerRun(1, 64), 8); // tfjs-wasm's pool holds at most 8
  assertEquals(arraySpec([3, 0, 1, 2], 2), "0-3%2");
  assertEquals(arraySpec([1, 4, 5, 7]), "1,4-5,7");
  assertEquals(splitArgs(`--partition=cpu  --comment "a b" --x='c d'`), [
    "--partition=cpu",
    "--comment",
    "a b",
    "--x=c d",
  ]);
  const m = planSweep({
    notebook: "/nb/x.ipynb",
    axes: [parseGridArg("init=default")],
    fixed: [],
    runs: [{ init: "default", seed: 2 }],
  });
  assertEquals(runArgs("/s", m, m.runs[0], true), [
    "task",
    "run",
    "/nb/x.ipynb",
    "-p",
    'init="default"',
    "-p",
    "seed=2",
    "-p",
    'runDir="/s/runs/run-000/results"',
    "--out",
    "/s/runs/run-000",
  ]);
});

Deno.test({
  name: "sweep: 2×2 grid with --jobs 2; a run killed mid-way is rerun once, done runs are kept",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-local-" });
    const out = `${tmp}/s`;
    const args = [
      SWEEP_FIXTURE,
      "--grid",
      "layer=conv,transposed",
      "--grid",
      "init=default,swapped",
      "-p",
      "sleepMs=4000",
      "--out",
      out,
      "--jobs",
      "2",
      "--no-report",
    ];
    try {
      const child = startSweep(args);
      // Wait for run-000 to start, then kill its `deno task run` process.
      let pid: number | undefined;
      for (let i = 0; i < 600 && pid === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const status = await Deno.readTextFile(`${out}/runs/run-000/status.json`).catch(() => "");
        if (status) pid = JSON.parse(status).pid;
      }
      assert(pid, "run-000 never started");
      await new Promise((r) => setTimeout(r, 2500)); // well inside its 4 s cell
      Deno.kill(pid, "SIGTERM");
      const first = await finish(child);
      assertEquals(first.code, 1, first.stdout + first.stderr);
      let m = await manifest(out);
      assertEquals(m.runs.map((r) => r.state), ["failed", "done", "done", "done"]);
      assertEquals(m.runs[0].status?.exitCode, 143);
      assertMatch(first.stdout, /run-000 \(exit 143\): runs\/run-000\/run\.log/);
      assertEquals(await executions(out, "run-000"), []);
      // Two at once on 2 cores: one tfjs thread each.
      assertEquals(await executions(out, "run-001"), ["conv swapped 0 1"]);
      // and one oneDNN thread each: its default, every core, would oversubscribe them.
      assertEquals(
        await Deno.readTextFile(`${out}/runs/run-001/results/native_threads.txt`),
        "1",
      );

      const second = await sweep(args);
      assertEquals(second.code, 0, second.stdout + second.stderr);
      assertStringIncludes(second.stdout, "1 of 4 runs to do (3 done, kept)");
      m = await manifest(out);
      assertEquals(m.runs.map((r) => r.state), ["done", "done", "done", "done"]);
      assertEquals(m.runs.map((r) => r.status?.attempt), [2, 1, 1, 1]);
      const lines = await Promise.all(m.runs.map((r) => executions(out, r.id)));
      assertEquals(lines.map((l) => l.length), [1, 1, 1, 1]); // every run done exactly once
      assertEquals(lines.map((l) => l[0].split(" ").slice(0, 2).join(" ")), [
        "conv default",
        "conv swapped",
        "transposed default",
        "transposed swapped",
      ]);
      // The log keeps both attempts of the killed run.
      const log = await Deno.readTextFile(`${out}/runs/run-000/run.log`);
      assertEquals(log.match(/^=== attempt \d/gm)?.length, 2);
      for (const r of m.runs) await Deno.stat(`${out}/${r.report}`);

      // Another grid for the same folder is refused, and nothing is touched.
      const before = await Deno.readTextFile(`${out}/sweep.json`);
      const changed = await sweep([...args.slice(0, 4), "init=default", ...args.slice(5)]);
      assertEquals(changed.code, 2);
      assertMatch(changed.stderr, /holds another sweep \(grid: .*init=default,swapped there/);
      assertEquals(await Deno.readTextFile(`${out}/sweep.json`), before);

      const status = await sweep(["status", out]);
      assertEquals(status.code, 0);
      assertMatch(status.stdout, /4 runs, 4 done, 0 failed/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("sweep: a failing run is reported with its log while the others finish", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sweep-fail-" });
  const out = `${tmp}/s`;
  try {
    const r = await sweep([
      SWEEP_FIXTURE,
      "--grid",
      "seed=0,1,2",
      "-p",
      "failSeed=1",
      "--out",
      out,
      "--jobs",
      "2",
      "--no-report",
    ]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const m = await manifest(out);
    assertEquals(m.runs.map((x) => x.state), ["done", "failed", "done"]);
    assertEquals(m.runs[1].status?.exitCode, 1);
    assertStringIncludes(r.stdout, "run-001 (exit 1): runs/run-001/run.log");
    const log = await Deno.readTextFile(`${out}/runs/run-001/run.log`);
    assertStringIncludes(log, "seed 1 fails on purpose");
    const status = await sweep(["status", out]);
    assertMatch(status.stdout, /3 runs, 2 done, 1 failed/);
    assertStringIncludes(status.stdout, "run-001 (exit 1): runs/run-001/run.log");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sweep: mistakes are refused before anything starts", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sweep-refuse-" });
  try {
    const typo = await sweep([SWEEP_FIXTURE, "--grid", "sede=1,2", "--out", `${tmp}/a`]);
    assertEquals(typo.code, 2);
    assertStringIncludes(typo.stderr, 'unknown parameter "sede"');
    assertStringIncludes(typo.stderr, "failSeed = -1 (number)");
    await assertMissing(`${tmp}/a`);
    // --slurm without Slurm: the message names the package to install.
    const noSlurm = await sweep(
      [SWEEP_FIXTURE, "--grid", "seed=1,2", "--out", `${tmp}/b`, "--slurm"],
      { PATH: `${tmp}/empty-path` },
    );
    assertEquals(noSlurm.code, 2);
    assertStringIncludes(noSlurm.stderr, "apt-get install slurm-wlm munge");
    await assertMissing(`${tmp}/b`);
    const noOut = await sweep([SWEEP_FIXTURE, "--grid", "seed=1,2"]);
    assertEquals(noOut.code, 2);
    assertStringIncludes(noOut.stderr, "--out DIR is required");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}

async function assertMissing(path: string): Promise<void> {
  const exists = await Deno.stat(path).then(() => true, () => false);
  assert(!exists, `${path} should not exist`);
}

Deno.test({
  name:
    "sweep: two sweeps started together on one folder: one runs, the other is refused naming it",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-lock-" });
    const out = `${tmp}/s`;
    const args = [SWEEP_FIXTURE, "--grid", "seed=0", "-p", "sleepMs=2000", "--out", out];
    try {
      const children = [startSweep([...args, "--no-report"]), startSweep([...args, "--no-report"])];
      const [a, b] = await Promise.all(children.map(finish));
      const codes = [a.code, b.code].sort();
      assertEquals(codes, [0, 2], `${a.stdout}${a.stderr}\n---\n${b.stdout}${b.stderr}`);
      const [winner, refused] = a.code === 0 ? [0, b] : [1, a];
      assertStringIncludes(refused.stderr, `${out} is in use by process ${children[winner].pid}`);
      assertStringIncludes(refused.stderr, `on ${hostname()}`);
      assertStringIncludes(refused.stderr, "deno task sweep");
      const ran = await executions(out, "run-000");
      assertEquals(ran.map((l) => l.split(" ").slice(0, 3).join(" ")), ["conv default 0"]); // once
      await assertMissing(`${out}/sweep.lock`); // released at the end

      // A lock left by a process that is gone is taken over; one of another host is respected.
      const dead = new Deno.Command("true").spawn();
      await dead.status;
      const lock = (pid: number, host: string) =>
        JSON.stringify({
          pid,
          host,
          started: "2026-01-01T00:00:00Z",
          command: "x",
          pidStart: 1, // were the pid reused, the process there started later
          token: "t",
        });
      await Deno.writeTextFile(`${out}/sweep.lock`, lock(dead.pid, hostname()));
      const resumed = await sweep([...args, "--no-report"]);
      assertEquals(resumed.code, 0, resumed.stdout + resumed.stderr);
      assertStringIncludes(resumed.stdout, `process ${dead.pid} on ${hostname()} (x) is gone`);
      await assertMissing(`${out}/sweep.lock`);
      await Deno.writeTextFile(`${out}/sweep.lock`, lock(dead.pid, "elsewhere"));
      const refusedToo = await sweep([...args, "--no-report"]);
      assertEquals(refusedToo.code, 2, refusedToo.stdout + refusedToo.stderr);
      assertStringIncludes(refusedToo.stderr, `in use by process ${dead.pid} on elsewhere`);
      // Ctrl-C ends a sweep and releases its folder.
      const other = `${tmp}/t`;
      const interrupted = startSweep([...args.slice(0, 5), "--out", other, "--no-report"]);
      for (let i = 0; !(await exists(`${other}/runs/run-000/status.json`)); i++) {
        assert(i < 600, "the interrupted sweep never started its run");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert(await exists(`${other}/sweep.lock`));
      Deno.kill(interrupted.pid, "SIGINT");
      assertEquals((await finish(interrupted)).code, 130);
      await assertMissing(`${other}/sweep.lock`);

      // status still reads the folder, and leaves sweep.json to the holder.
      const before = await Deno.readTextFile(`${out}/sweep.json`);
      const status = await sweep(["status", out]);
      assertEquals(status.code, 0, status.stderr);
      assertMatch(status.stdout, /1 runs, 1 done/);
      assertStringIncludes(status.stdout, `left as it is: process ${dead.pid} on elsewhere`);
      assertEquals(await Deno.readTextFile(`${out}/sweep.json`), before);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
