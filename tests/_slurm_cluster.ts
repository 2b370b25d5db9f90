/**
 * A throwaway single-node Slurm cluster for tests: its own slurm.conf, state, spool and log
 * folders in a temporary directory, its own munge key and socket, its own ports; `munged`,
 * `slurmctld` and `slurmd` run in the foreground as children of the test and are stopped by their
 * process ids. Needs root and Debian's slurm-wlm and munge (tests/setup.ts installs them).
 *
 * @example
 * ```ts
 * const cluster = await startCluster();
 * try {
 *   await new Deno.Command("sbatch", { args: ["job.sh"], env: cluster.env }).output();
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 * @module
 */
import { hostname } from "node:os";

/** A running test cluster. */
export interface TestCluster {
  /** The temporary folder holding everything. */
  dir: string;
  /** Environment for Slurm's client commands (`SLURM_CONF`). */
  env: Record<string, string>;
  /** Stops the three daemons by their process ids and removes the folder. */
  stop(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Starts a daemon in the foreground (its own log file holds its output). */
function daemon(command: string, args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(command, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
}

/**
 * Starts the cluster (see the module doc) and waits until its node is idle.
 *
 * @example
 * ```ts
 * const cluster = await startCluster();
 * ```
 */
export async function startCluster(): Promise<TestCluster> {
  const dir = await Deno.makeTempDir({ prefix: "slurm-test-" });
  await Deno.chmod(dir, 0o755); // munged wants the socket's folders reachable
  for (const d of ["state", "spool", "log"]) await Deno.mkdir(`${dir}/${d}`);
  const key = crypto.getRandomValues(new Uint8Array(1024));
  await Deno.writeFile(`${dir}/munge.key`, key, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/plugstack.conf`, "");
  const host = hostname().split(".")[0];
  const conf = [
    "ClusterName=sweeptest",
    `SlurmctldHost=${host}`,
    `SlurmctldPort=${freePort()}`,
    `SlurmdPort=${freePort()}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    `AuthInfo=socket=${dir}/munge.sock`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    `PlugStackConfig=${dir}/plugstack.conf`,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "MpiDefault=none",
    "MailProg=/bin/true",
    "ReturnToService=2",
    `NodeName=${host} CPUs=${navigator.hardwareConcurrency} State=UNKNOWN`,
    "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/slurm.conf`, conf);
  const env = { SLURM_CONF: `${dir}/slurm.conf` };
  const started: Deno.ChildProcess[] = [];
  const stop = async () => {
    // Jobs still running (a test that failed half-way) would outlive slurmd: cancel them first.
    if (started.length === 3) {
      await new Deno.Command("scancel", { args: ["--me"], env, stdout: "null", stderr: "null" })
        .output();
      await waitFor(
        async () => {
          const out = await new Deno.Command("squeue", { args: ["-h"], env, stdout: "piped" })
            .output();
          return new TextDecoder().decode(out.stdout).trim() === "";
        },
        "cancelled jobs to end",
        dir,
      ).catch(() => {});
    }
    for (const child of started.reverse()) {
      try {
        Deno.kill(child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    started.push(daemon("munged", [
      "-F",
      "--force",
      `--key-file=${dir}/munge.key`,
      `--socket=${dir}/munge.sock`,
      `--pid-file=${dir}/munged.pid`,
      `--log-file=${dir}/log/munged.log`,
      `--seed-file=${dir}/munge.seed`,
    ], env));
    await waitFor(async () => await exists(`${dir}/munge.sock`), "munged's socket", dir);
    started.push(daemon("slurmctld", ["-D", "-i", "-f", `${dir}/slurm.conf`], env));
    started.push(daemon("slurmd", ["-D", "-f", `${dir}/slurm.conf`], env));
    await waitFor(
      async () => {
        const out = await new Deno.Command("sinfo", {
          args: ["-h", "-o", "%T"],
          env,
          stdout: "piped",
          stderr: "null",
        }).output();
        return new TextDecoder().decode(out.stdout).trim() === "idle";
      },
      "the node to be idle",
      dir,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, stop };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function waitFor(ok: () => Promise<boolean>, what: string, dir: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = await Array.fromAsync(Deno.readDir(`${dir}/log`));
  const tails = await Promise.all(
    logs.map(async (l) =>
      `${l.name}:\n${(await Deno.readTextFile(`${dir}/log/${l.name}`)).slice(-1500)}`
    ),
  );
  throw new Error(`test cluster: timed out waiting for ${what}\n${tails.join("\n")}`);
}
