/**
 * Makes sure the system tools the tests use are present before `deno task test` runs them:
 * Debian's chromium (HTML reports are checked in a real headless browser), the nbformat 4
 * JSON schema, which Debian ships in python3-nbformat (only the schema file is read; no Python
 * runs), Mesa's EGL and software rasteriser (llvmpipe), which give Deno a WebGPU adapter on
 * a machine without a GPU (tests/webgpu_test.ts, tests/webgpu_training_test.ts), oneDNN 2.x
 * (libdnnl2), whose native convolution kernels tests/native_test.ts checks, and Slurm with munge
 * (slurm-wlm, munge) for the sweep tests' real cluster. As root with apt-get available it
 * installs what is missing; otherwise it says exactly what to install and exits non-zero.
 *
 * @example
 * ```sh
 * deno run -A tests/setup.ts
 * ```
 * @module
 */
import { existsSync } from "node:fs";

/** Debian's multiarch library folder of this machine. */
const LIB = `/usr/lib/${Deno.build.arch}-linux-gnu`;

/** Debian package → file whose presence shows it is installed. */
const NEEDED: Record<string, string> = {
  chromium: "/usr/bin/chromium",
  "python3-nbformat": "/usr/lib/python3/dist-packages/nbformat/v4/nbformat.v4.schema.json",
  // WebGPU in Deno (wgpu) on Mesa's GL/EGL driver: libEGL, Mesa's EGL vendor, llvmpipe.
  libegl1: `${LIB}/libEGL.so.1`,
  "libegl-mesa0": `${LIB}/libEGL_mesa.so.0`,
  "libgl1-mesa-dri": `${LIB}/dri/swrast_dri.so`,
  libdnnl2: `${LIB}/libdnnl.so.2`,
  // A throwaway single-node cluster runs the sweep tests' Slurm job arrays.
  "slurm-wlm": "/usr/sbin/slurmctld",
  munge: "/usr/sbin/munged",
};

async function run(cmd: string, args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(cmd, {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "inherit",
  }).output();
  return success;
}

const missing = Object.entries(NEEDED).filter(([, file]) => !existsSync(file)).map(([pkg]) => pkg);
if (missing.length > 0) {
  const isRoot = Deno.uid?.() === 0;
  const hasApt = existsSync("/usr/bin/apt-get");
  if (!isRoot || !hasApt) {
    console.error(
      `The tests need these Debian packages: ${missing.join(", ")}.\n` +
        `Install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}`,
    );
    Deno.exit(1);
  }
  console.error(`[setup] installing ${missing.join(", ")} with apt-get (once)…`);
  if (
    !(await run("apt-get", ["update", "-qq"])) ||
    !(await run("apt-get", ["install", "-y", "-qq", ...missing]))
  ) {
    console.error(`[setup] apt-get install ${missing.join(" ")} failed`);
    Deno.exit(1);
  }
}
