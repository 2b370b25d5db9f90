/**
 * What `loadDataset` costs in memory and time when a notebook asks for a subset: each load runs
 * in a fresh process, which prints its peak resident memory (`VmHWM`), how much the load itself
 * raised it, the load's wall time and a SHA-256 of everything loaded (images, labels, statistics,
 * sizes), so two implementations can be compared bit for bit.
 *
 * Without `--data`, a full-size CIFAR-10-format folder (50,000 + 10,000 records of random pixels
 * and labels, 184 MB, with the `VERIFIED.json` the loader asks for) is written under the system's
 * temporary folder first and removed at the end. `--against` names another `dataset.ts` (e.g. an
 * older copy) to load alternately with this one. `--train`/`--test` are the subset sizes, or
 * `all` for the whole split. Linux only (`/proc/self/status`).
 *
 * ```sh
 * deno run -A bench/dataset_memory.ts                       # 2,000 + 500 images, 3 runs
 * deno run -A bench/dataset_memory.ts --train all --test all --runs 3 --against ../old/lib/data/dataset.ts
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  CIFAR10_CLASSES,
  CIFAR10_FOLDER,
  META_FILE,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILES,
} from "../lib/data/cifar10.ts";
import { CIFAR10_MARKER, type VerifiedRecord } from "../lib/data/download.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string" },
    train: { type: "string", default: "2000" },
    test: { type: "string", default: "500" },
    runs: { type: "string", default: "3" },
    against: { type: "string" },
    child: { type: "string" },
    json: { type: "boolean" },
  },
});

const kib = (key: string) =>
  Number(new RegExp(`${key}:\\s+(\\d+)`).exec(Deno.readTextFileSync("/proc/self/status"))![1]);

/** One load in this process; prints its measurements as JSON. */
async function child(module: string, dataDir: string, trainSize?: number, testSize?: number) {
  const { loadDataset } = await import(module);
  await new Promise((r) => setTimeout(r, 50));
  Deno.writeTextFileSync("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
  const before = kib("VmHWM");
  const t0 = performance.now();
  const data = await loadDataset({ dataset: "cifar10", dataDir, trainSize, testSize, log: false });
  const loadMs = performance.now() - t0;
  const hash = createHash("sha256");
  for (const set of [data.train, data.test]) hash.update(set.images).update(set.labels);
  hash.update(JSON.stringify([data.stats, data.fullSizes, data.classNames]));
  console.log(JSON.stringify({
    loadMs: Math.round(loadMs),
    peakKiB: kib("VmHWM"),
    loadRaisedKiB: kib("VmHWM") - before,
    images: [data.train.length, data.test.length],
    sha256: hash.digest("hex").slice(0, 16),
  }));
}

/** Writes a CIFAR-10-format folder of random records, as `deno task data:cifar10` leaves it. */
async function makeFixture(dataDir: string): Promise<void> {
  const folder = join(dataDir, CIFAR10_FOLDER);
  await Deno.mkdir(folder, { recursive: true });
  const files: Record<string, number> = {};
  const bytes = new Uint8Array(10_000 * RECORD_BYTES);
  for (const name of [...TRAIN_FILES, TEST_FILE]) {
    for (let at = 0; at < bytes.length; at += 65_536) {
      crypto.getRandomValues(bytes.subarray(at, at + 65_536));
    }
    for (let r = 0; r < 10_000; r++) bytes[r * RECORD_BYTES] %= 10; // labels 0–9
    await Deno.writeFile(join(folder, name), bytes);
    files[name] = bytes.length;
  }
  const meta = CIFAR10_CLASSES.join("\n") + "\n";
  await Deno.writeTextFile(join(folder, META_FILE), meta);
  files[META_FILE] = meta.length;
  const record: VerifiedRecord = {
    dataset: "CIFAR-10",
    md5: "0".repeat(32),
    source: "bench/dataset_memory.ts (random records)",
    files,
    images: { train: 50_000, test: 10_000 },
    verifiedAt: new Date().toISOString(),
  };
  await Deno.writeTextFile(join(folder, CIFAR10_MARKER), JSON.stringify(record, null, 2) + "\n");
}

const size = (text: string) => (text === "all" ? undefined : Number(text));
if (args.values.child) {
  await child(
    args.values.child,
    args.values.data!,
    size(args.values.train),
    size(args.values.test),
  );
} else {
  const own = new URL("../lib/data/dataset.ts", import.meta.url).href;
  const modules: [string, string][] = [["this", own]];
  if (args.values.against) {
    modules.unshift(["against", new URL(`file://${resolve(args.values.against)}`).href]);
  }
  const dataDir = args.values.data ?? await Deno.makeTempDir({ prefix: "dataset_memory_" });
  try {
    if (!args.values.data) await makeFixture(dataDir);
    const rows = [];
    for (let run = 0; run < Number(args.values.runs); run++) {
      for (const [name, module] of modules) {
        const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            import.meta.filename!,
            `--child=${module}`,
            `--data=${dataDir}`,
            `--train=${args.values.train}`,
            `--test=${args.values.test}`,
          ],
        }).output();
        if (code !== 0) throw new Error(`${name} failed: ${new TextDecoder().decode(stderr)}`);
        rows.push({ run, impl: name, ...JSON.parse(new TextDecoder().decode(stdout)) });
      }
    }
    if (args.values.json) console.log(JSON.stringify(rows));
    else console.table(rows);
  } finally {
    if (!args.values.data) await Deno.remove(dataDir, { recursive: true });
  }
}
