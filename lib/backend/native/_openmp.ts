/**
 * Sets and reads back the size of OpenMP's pool, which oneDNN's Debian build computes on
 * (`libgomp`, loaded with oneDNN): what `omp_set_num_threads` left in force for the calling
 * thread, the one that calls oneDNN (Deno's FFI calls run on the JavaScript thread).
 *
 * @example
 * ```ts
 * import { openMpMaxThreads, setOpenMpThreads } from "./_openmp.ts";
 * setOpenMpThreads(2);
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

/**
 * Sets the size of OpenMP's thread pool, which oneDNN's Debian build computes on (through
 * `libgomp`, already loaded with oneDNN). Returns false when libgomp cannot be opened.
 *
 * @example
 * ```ts
 * setOpenMpThreads(2); // true
 * ```
 */
export function setOpenMpThreads(threads: number): boolean {
  try {
    const gomp = Deno.dlopen("libgomp.so.1", {
      omp_set_num_threads: { parameters: ["i32"], result: "void" },
    });
    gomp.symbols.omp_set_num_threads(threads);
    return true;
  } catch {
    return false;
  }
}
