/**
 * Reads back the size of OpenMP's pool, which oneDNN's Debian build computes on (`libgomp`,
 * loaded with oneDNN): what `omp_set_num_threads` left in force for the calling thread, the one
 * that calls oneDNN (Deno's FFI calls run on the JavaScript thread).
 *
 * @example
 * ```ts
 * import { openMpMaxThreads } from "./_openmp.ts";
 * openMpMaxThreads(); // 2, or undefined without libgomp
 * ```
 * @module
 */

/**
 * `omp_get_max_threads()`: the threads the next parallel region (the next oneDNN call) runs on,
 * or undefined when libgomp cannot be opened.
 */
export function openMpMaxThreads(): number | undefined {
  try {
    const gomp = Deno.dlopen("libgomp.so.1", {
      omp_get_max_threads: { parameters: [], result: "i32" },
    });
    try {
      return gomp.symbols.omp_get_max_threads();
    } finally {
      gomp.close();
    }
  } catch {
    return undefined;
  }
}
