import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startCluster } from "./_slurm_cluster.ts";
import {
  executions,
  finish,
  manifest,
  type Ran,
  startSweep,
  sweep,
  SWEEP_FIXTURE,
} from "./_sweep_helpers.ts";

Deno.test({
  name:
    "sweep --slurm --wait on a real single-node Slurm cluster; a rerun resubmits only what is not done",
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startCluster();
    const out = `${cluster.dir}/sweep`;
    const args = [
      SWEEP_FIXTURE,
      "--grid",
      "seed=0,1,2",
      "-p",
      "failSeed=2",
      "--out",
      out,
      "--slurm",
      "--wait",
      "--jobs",
      "2",
    ];
    try {
      const first = await sweep(args, cluster.env);
      assertEquals(first.code, 1, first.stdout + first.stderr);
      assertStringIncludes(first.stdout, "(--array=0-2%2)");
      let m = await manifest(out);
      assertEquals(
        m.runs.map((r) => r.state),
        ["done", "done", "failed"],
        await failureDetails(out, first.stdout + first.stderr),
      );
      assertEquals(m.slurm?.map((s) => s.tasks), [[0, 1, 2]]);
      const jobId = m.slurm![0].jobId;
      // Each run was executed by its array task, one thread each (--cpus-per-task 1).
      assertEquals(
        m.runs.map((r) => r.status?.slurm),
        [0, 1, 2].map((taskId) => ({ jobId, taskId })),
      );
      assertEquals(await executions(out, "run-000"), ["conv default 0 1"]);
      assertEquals(await executions(out, "run-001"), ["conv default 1 1"]);
      assertStringIncludes(first.stdout, "run-002 (exit 1): runs/run-002/run.log");
      const log = await Deno.readTextFile(`${out}/runs/run-002/run.log`);
      assertStringIncludes(log, "seed 2 fails on purpose");
      // Every run's report, the failed one with its error.
      for (const r of m.runs.slice(0, 2)) {
        const html = await Deno.readTextFile(`${out}/${r.report}`);
        assertStringIncludes(html, `&quot;seed&quot;:${r.index},&quot;threads&quot;:&quot;1&quot;`);
      }
      assertStringIncludes(
        await Deno.readTextFile(`${out}/${m.runs[2].report}`),
        "seed 2 fails on purpose",
      );
      // The summary notebook ran on the sweep folder.
      const summary = await Deno.readTextFile(`${out}/03_sweep.html`);
      assertStringIncludes(summary, "run-002");
      assertStringIncludes(summary, "failed");

      const second = await sweep(args, cluster.env);
      assertEquals(second.code, 1);
      assertStringIncludes(second.stdout, "1 of 3 runs to submit");
      assertStringIncludes(second.stdout, "(--array=2%2)");
      m = await manifest(out);
      assertEquals(m.slurm?.map((s) => s.tasks), [[0, 1, 2], [2]]);
      assertEquals(m.runs.map((r) => r.status?.attempt), [1, 1, 2]);
      assertEquals(await executions(out, "run-000"), ["conv default 0 1"]); // not run again
      const status = await sweep(["status", out], cluster.env);
      assertStringIncludes(status.stdout, "3 runs, 2 done, 1 failed");
      assert(status.stdout.includes("run-002 (exit 1): runs/run-002/run.log"), status.stdout);
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "sweep status while a Slurm submission is being recorded keeps the submission record",
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startCluster();
    const out = `${cluster.dir}/race`;
    const bin = `${cluster.dir}/bin`;
    const real = new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", "command -v sbatch"], stdout: "piped" })
        .output()).stdout,
    ).trim();
    // Slurm's own sbatch, held back until the test says go: the submitting sweep then sits
    // between reading sweep.json and writing its submission record into it.
    await Deno.mkdir(bin);
    await Deno.writeTextFile(
      `${bin}/sbatch`,
      `#!/bin/sh
[ "$1" = "--version" ] && exec "${real}" "$@"
touch "${cluster.dir}/sbatch-called"
while [ ! -e "${cluster.dir}/sbatch-go" ]; do sleep 0.05; done
exec "${real}" "$@"
`,
    );
    await Deno.chmod(`${bin}/sbatch`, 0o755);
    const env = { ...cluster.env, PATH: `${bin}:${Deno.env.get("PATH")}` };
    const fifoPath = `${out}/runs/run-000/status.json`;
    try {
      const submitter = startSweep(
        [SWEEP_FIXTURE, "--grid", "seed=0,1", "--out", out, "--slurm", "--slurm-args=--hold"],
        env,
      );
      const done = finish(submitter);
      let ended: Ran | undefined;
      done.then((r) => ended = r);
      for (let i = 0; !(await exists(`${cluster.dir}/sbatch-called`)); i++) {
        if (ended) throw new Error(`the sweep ended before sbatch: ${ended.stdout}${ended.stderr}`);
        assert(i < 1200, "the sweep never called sbatch");
        await new Promise((r) => setTimeout(r, 50));
      }
      // A status file that blocks its reader: sweep status stops there, sweep.json read, until
      // the test writes the status.
      await Deno.mkdir(`${out}/runs/run-000`, { recursive: true });
      const mkfifo = await new Deno.Command("mkfifo", { args: [fifoPath] }).output();
      assert(mkfifo.success, "mkfifo failed");
      const status = startSweep(["status", out], cluster.env);
      const fifo = await Deno.open(fifoPath, { write: true }); // returns once status reads it
      await Deno.writeTextFile(`${cluster.dir}/sbatch-go`, "");
      const submitted = await done;
      assertEquals(submitted.code, 0, submitted.stdout + submitted.stderr);
      const jobId = /submitted Slurm job array (\d+)/.exec(submitted.stdout)?.[1];
      assert(jobId, submitted.stdout);
      assertEquals((await manifest(out)).slurm?.map((s) => s.jobId), [jobId]);
      const record = { state: "running", started: new Date().toISOString(), host: "n", attempt: 1 };
      await fifo.write(new TextEncoder().encode(JSON.stringify(record)));
      fifo.close();
      const shown = await finish(status);
      assertEquals(shown.code, 0, shown.stdout + shown.stderr);
      assertEquals((await manifest(out)).slurm?.map((s) => s.jobId), [jobId], "record lost");
      assertStringIncludes(shown.stdout, "2 runs, 0 done, 0 failed, 1 running, 1 pending");
      assertStringIncludes(shown.stdout, "sweep.json left as it is: process");
      await new Deno.Command("scancel", { args: [jobId], env: cluster.env }).output();
    } finally {
      await cluster.stop();
    }
  },
});

function exists(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}

/** Everything a failed run left behind: the sweep's output, each run's log, Slurm's outputs. */
async function failureDetails(out: string, sweepOutput: string): Promise<string> {
  const parts = [`sweep output:\n${sweepOutput}`];
  for (const dir of [`${out}/runs`, `${out}/slurm`]) {
    try {
      for await (const e of Deno.readDir(dir)) {
        const path = e.isDirectory ? `${dir}/${e.name}/run.log` : `${dir}/${e.name}`;
        parts.push(`${path}:\n${await Deno.readTextFile(path).catch((err) => String(err))}`);
      }
    } catch (err) {
      parts.push(`${dir}: ${err}`);
    }
  }
  return parts.join("\n\n");
}
