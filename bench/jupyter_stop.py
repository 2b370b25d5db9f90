#!/usr/bin/python3
"""Stop during notebook 02's training, through a real Jupyter client (optional, run by hand).

The same trials as `deno run -A bench/interrupt.ts`, but the kernel is started and stopped by
jupyter_client, as JupyterLab, Notebook and VS Code do: `deno task kernel install` writes the
kernelspec into a temporary JUPYTER_DATA_DIR, jupyter_client's KernelManager starts the kernel
from it, and Stop is `KernelManager.interrupt_kernel()`, which follows the spec's
`interrupt_mode`. Each trial records the seconds from the Stop to the cell's `idle`,
`tf.memory().numTensors` before the cell and after it, and whether a new training run with other
hyperparameters then trains. All trials share one kernel, as a person's session would.

The project never needs Python; this script needs Debian's python3-jupyter-client:

    /usr/bin/python3 bench/jupyter_stop.py                # 10 trials
    /usr/bin/python3 bench/jupyter_stop.py --trials 3 --json
    /usr/bin/python3 bench/jupyter_stop.py --threads 2    # the kernelspec's TCONV_THREADS
    TCONV_NATIVE_THREADS=1 /usr/bin/python3 bench/jupyter_stop.py  # oneDNN on one thread (the
                                                    # kernel inherits this environment)
"""

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
HANG_S = 60
# Displays that came after their cell's idle (value() waits for them; counted in the summary).
LATE_DISPLAYS = []


def code_cells():
    with open(os.path.join(NOTEBOOKS, "02_train.ipynb")) as f:
        nb = json.load(f)
    cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
             for c in nb["cells"] if c["cell_type"] == "code"]
    training = next(c for c in cells if "runExperiment(" in c)
    return cells[:cells.index(training)], training


def run(kc, code, timeout=300):
    """Executes `code`; returns the text/plain of its displays and its msg_id. Raises on an error
    or a hang."""
    msg_id = kc.execute(code)
    shown, error = [], None
    deadline = time.time() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.time()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        t = msg["header"]["msg_type"]
        if t == "display_data":
            shown.append(msg["content"]["data"].get("text/plain", ""))
        elif t == "error":
            error = f'{msg["content"]["ename"]}: {msg["content"]["evalue"]}'
        elif t == "status" and msg["content"]["execution_state"] == "idle":
            break
    if error:
        raise RuntimeError(f"cell failed: {error}\n{code}")
    return shown, msg_id


def value(kc, expression):
    shown, msg_id = run(kc, f'await Deno.jupyter.display({{ "text/plain": String({expression}) }}, '
                            '{ raw: true });')
    if not shown:
        # The kernel may send a display after the cell's idle (seen after a Stop): wait for it.
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if (msg["parent_header"].get("msg_id") == msg_id
                    and msg["header"]["msg_type"] == "display_data"):
                LATE_DISPLAYS.append(expression[:40])
                return msg["content"]["data"].get("text/plain", "")
        # Say how the cell ended (its execute_reply), not just that it showed nothing.
        reply = None
        while reply is None or reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=10)
        c = reply["content"]
        raise RuntimeError(f'cell showed nothing; reply {c.get("status")} '
                           f'{c.get("ename", "")}: {c.get("evalue", "")}'.rstrip(": "))
    return shown[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", default=None, help="passed to deno task kernel install")
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="jupyter-stop-")
    os.environ["JUPYTER_DATA_DIR"] = data_dir
    deno = os.environ.get("DENO", shutil.which("deno") or "deno")
    install = [deno, "task", "-q", "kernel", "install"]
    if args.threads:
        install += ["--threads", args.threads]
    subprocess.run(install, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="deno")
    km.start_kernel(cwd=NOTEBOOKS)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    results = []
    try:
        setup, training = code_cells()
        for cell in setup:
            run(kc, cell)
        run(kc, 'const small = await loadDataset({ dataset: dataset as "auto", trainSize: 20, '
                'testSize: 10, seed: 1, log: false });')
        info = {
            "interrupt_mode": km.kernel_spec.interrupt_mode,
            "env": km.kernel_spec.env,
            "backend": value(kc, 'tf.getBackend() + " " + JSON.stringify((await import('
                                 '"../lib/mod.ts")).nativeKernels())'),
        }
        if not args.json:
            print(f"kernelspec: {info}")
        for trial in range(1, args.trials + 1):
            before = int(value(kc, "tf.memory().numTensors"))
            msg_id = kc.execute(training)
            # Wait for the progress bar to move, then a delay that differs per trial.
            while True:
                msg = kc.get_iopub_msg(timeout=120)
                if (msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"]
                        in ("display_data", "update_display_data", "stream")):
                    break
            time.sleep(1 + (trial * 0.137) % 1)
            t0 = time.time()
            km.interrupt_kernel()
            idle = None
            while time.time() - t0 < HANG_S:
                try:
                    msg = kc.get_iopub_msg(timeout=0.5)
                except queue.Empty:
                    continue
                if (msg["parent_header"].get("msg_id") == msg_id and
                        msg["header"]["msg_type"] == "status" and
                        msg["content"]["execution_state"] == "idle"):
                    idle = time.time() - t0
                    break
            if idle is None:
                results.append({"trial": trial, "hung": True})
                if not args.json:
                    print(f"trial {trial}: no idle within {HANG_S} s (kernel hung)")
                break
            after = int(value(kc, "tf.memory().numTensors"))
            try:
                losses = json.loads(value(kc, f"""JSON.stringify((await runExperiment({{
                  dataset: small, seeds: [{trial}], augment: false,
                  hyper: {{ epochs: 1, batchSize: {4 + trial}, lr: {0.001 * trial}, momentum: 0.5 }}
                }}))[0].results.arms.flatMap((a) => a.steps.map((s) => s[2])))"""))
                next_run = "ok" if losses and all(map(lambda x: x == x, losses)) else "bad losses"
            except Exception as e:  # noqa: BLE001 (reported, not hidden)
                next_run = str(e).splitlines()[0]
            results.append({"trial": trial, "secondsToIdle": round(idle, 3),
                            "tensorsBefore": before, "tensorsAfter": after, "nextRun": next_run})
            if not args.json:
                print(f"trial {trial}: idle after {idle:.2f} s; tensors {before} -> {after}; "
                      f"next run {next_run}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    ok = [r for r in results if not r.get("hung") and r["nextRun"] == "ok"
          and r["tensorsAfter"] == r["tensorsBefore"] and r["secondsToIdle"] <= 2]
    summary = {"kernel": info, "trials": results, "ok": len(ok), "of": args.trials,
               "lateDisplays": len(LATE_DISPLAYS)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{len(ok)} of {args.trials}: ended within 2 s, tensor count restored, next run ok"
              f"; {len(LATE_DISPLAYS)} display(s) came after their cell's idle")
    return 0 if len(ok) == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
