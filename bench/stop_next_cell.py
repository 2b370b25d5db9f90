#!/usr/bin/python3
"""Stop during training, with the next cell already waiting (optional, run by hand).

What the cell right after a Stop sees. The kernel is started and stopped by jupyter_client with
the kernelspec `deno task kernel install` writes (as in `bench/jupyter_stop.py`). Each trial starts
a small training run (lib's `runExperiment` on the built-in set), waits until its second step and
a random delay, interrupts, and sends the next cell at once, so that it waits in the kernel's
queue and runs the moment the stopped cell ends. That cell stores `tf.memory().numTensors`; a
later one reads it back with the count then. A trial is `ok` when both equal the count before the
training cell, `STALE` when only the later one does (the next cell saw the stopped call's tensors),
`OFF` when the count stayed wrong. `--collect-ms N` adds a timer in the notebook that collects
garbage every N ms from the second step on: V8's own collections, which ended a stopped cell
before lib's watchdog did, made frequent.

The project never needs Python; this script needs Debian's python3-jupyter-client:

    /usr/bin/python3 bench/stop_next_cell.py --trials 40
    /usr/bin/python3 bench/stop_next_cell.py --trials 40 --collect-ms 25
"""

import argparse
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def collect(kc, msg_id, timeout=120, want_result=False):
    """The execute_results and error of `msg_id` until its idle (a result may come after it)."""
    out, error, idle = [], None, False
    deadline = time.time() + timeout
    while not (idle and (out or not want_result)):
        try:
            msg = kc.get_iopub_msg(timeout=3 if idle else max(0.1, deadline - time.time()))
        except queue.Empty:
            if idle:
                break
            raise
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        t = msg["header"]["msg_type"]
        if t == "execute_result":
            out.append(ANSI.sub("", msg["content"]["data"].get("text/plain", "")))
        elif t == "error":
            error = f'{msg["content"]["ename"]}: {msg["content"]["evalue"]}'
        elif t == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    return out, error


def value(kc, code):
    out, error = collect(kc, kc.execute(code), want_result=True)
    if error or not out:
        raise RuntimeError(f"cell failed: {error or 'no result'}\n{code}")
    return out[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--collect-ms", type=int, default=0)
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="stop-next-")
    os.environ["JUPYTER_DATA_DIR"] = data_dir
    deno = os.environ.get("DENO", shutil.which("deno") or "deno")
    subprocess.run([deno, "task", "-q", "kernel", "install"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="deno")
    km.start_kernel(cwd=ROOT)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    counts, seconds = {}, []
    try:
        value(kc, '''import { tf, useBackend, loadDataset, runExperiment } from "./lib/mod.ts";
          import v8 from "node:v8";
          import vm from "node:vm";
          v8.setFlagsFromString("--expose-gc");
          const collect = vm.runInNewContext("gc");
          let collector: number | undefined;
          await useBackend("wasm");
          const data = await loadDataset({ dataset: "synthetic", trainSize: 120, testSize: 20, log: false });
          "ready"''')
        start = f"collector = setInterval(collect, {args.collect_ms});" if args.collect_ms else ""
        for trial in range(1, args.trials + 1):
            before = int(value(kc, "tf.memory().numTensors"))
            msg_id = kc.execute('''await runExperiment({
              dataset: data, seeds: [0], control: false, augment: false,
              hyper: { epochs: 100, batchSize: 12, lr: 0.01, momentum: 0.9 },
              onStep: (_, p) => { if (p.step === 2) { %s Deno.jupyter.broadcast("display_data",
                { data: { "text/plain": "step 2" }, metadata: {}, transient: {} }); } },
            });''' % start)
            while True:
                msg = kc.get_iopub_msg(timeout=120)
                if (msg["parent_header"].get("msg_id") == msg_id
                        and msg["header"]["msg_type"] in ("display_data", "error")):
                    break
            time.sleep(random.random() * 0.8)
            t0 = time.time()
            km.interrupt_kernel()
            next_id = kc.execute("globalThis.nextCount = tf.memory().numTensors;")
            collect(kc, msg_id, 60)
            seconds.append(time.time() - t0)
            _, error = collect(kc, next_id, 60)
            if error:
                raise RuntimeError(f"the next cell failed: {error}")
            shown = value(kc, "clearInterval(collector); JSON.stringify([globalThis.nextCount, "
                              "tf.memory().numTensors])")
            nxt, later = json.loads(shown[1:-1])  # the kernel shows the string quoted
            kind = ("ok" if nxt == before and later == before else
                    "STALE" if later == before else "OFF")
            counts[kind] = counts.get(kind, 0) + 1
            print(f"trial {trial}: idle after {seconds[-1]:.2f} s; tensors {before}, next cell "
                  f"{nxt}, later {later}: {kind}", flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    seconds.sort()
    print(f"{sum(counts.values())} Stops (collect-ms {args.collect_ms}): {counts}; to idle: median "
          f"{seconds[len(seconds) // 2]:.2f} s, slowest {seconds[-1]:.2f} s")
    return 0 if counts.get("ok", 0) == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
