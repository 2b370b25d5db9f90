import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { startCluster } from "./_slurm_cluster.ts";
import { executions, manifest, sweep, SWEEP_FIXTURE } from "./_sweep_helpers.ts";

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
