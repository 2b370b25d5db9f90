/**
 * oneDNN (the library PyTorch's CPU convolutions run on; Debian's `libdnnl2`) through Deno's FFI:
 * the few C functions of its 2.x API that convolutions need, with status codes turned into
 * errors. Hand-written because no npm package binds oneDNN for Deno; the layout facts (struct
 * sizes, enum values) are those of oneDNN 2.x's `dnnl_types.h`, which 3.x changed (its
 * convolution API is different), so only 2.x is accepted.
 *
 * @example
 * ```ts
 * import { openDnnl } from "./_dnnl.ts";
 * const dnnl = openDnnl(); // throws, naming the library and the fix, when it cannot load
 * dnnl.version; // "2.6.3"
 * ```
 * @module
 */
import { envValue, trySetEnv } from "../../util/env.ts";

/** Library file names tried, in order, unless {@linkcode LIBRARY_ENV_VAR} names one. */
// (libdnnl.so.3 last: only to name the version when 3.x is all there is.)
const LIBRARY_NAMES = [
  "libdnnl.so.2",
  "libdnnl.so",
  "libdnnl.2.dylib",
  "dnnl.dll",
  "libdnnl.so.3",
  "libdnnl.3.dylib",
];

/** Environment variable naming the oneDNN library file to load instead of the usual names. */
export const LIBRARY_ENV_VAR = "TCONV_DNNL_LIBRARY";

/** `sizeof(dnnl_memory_desc_t)` and `sizeof(dnnl_convolution_desc_t)` in oneDNN 2.x. */
export const MD_SIZE = 696;
const CONV_DESC_SIZE = 5976;

/** Enum values of oneDNN 2.x (dnnl_types.h). */
export const DNNL = {
  f32: 3,
  tagAny: 1,
  tagA: 2,
  tagNhwc: 20,
  tagHwio: 30,
  forwardTraining: 64,
  backwardData: 160,
  backwardWeights: 192,
  convolutionDirect: 1,
  argSrc: 1,
  argDst: 17,
  argWeights: 33,
  argBias: 41,
  argDiffSrc: 129,
  argDiffWeights: 161,
  argDiffDst: 145,
  querySrcMd: 129,
  queryWeightsMd: 131,
  queryDiffWeightsMd: 132,
  queryImplInfoStr: 8,
} as const;

const STATUS = [
  "success",
  "out of memory",
  "invalid arguments",
  "unimplemented",
  "iterator ends",
  "runtime error",
  "not required",
];

/** A convolution's strides, dilates, left and right padding: four `dnnl_dims_t` arrays. */
const GEOMETRY = ["buffer", "buffer", "buffer", "buffer"] as const;

const SYMBOLS = {
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  // (descriptor, kinds…, memory descriptions…, strides, dilates, padding left, padding right)
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "buffer", "pointer", "buffer", ...GEOMETRY],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", ...GEOMETRY],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "pointer", "buffer", ...GEOMETRY],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_desc_query: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
} as const;

/**
 * The C functions only some kernel families use (batch normalization, eltwise, pooling, copies,
 * GEMM), bound in one more `dlopen` of the same library, made on first use. Optional, so that a
 * library lacking one leaves out only the family that asks for it ({@linkcode Dnnl.symbol}).
 */
const EXTRA_SYMBOLS = {
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  dnnl_binary_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  // (descriptor, kind, algorithm, src, dst, strides, kernel, padding left, padding right)
  dnnl_pooling_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "buffer", ...GEOMETRY],
    result: "i32",
    optional: true,
  },
  dnnl_pooling_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", ...GEOMETRY],
    result: "i32",
    optional: true,
  },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
    optional: true,
  },
  // (descriptor, destination, inputs, concatenated dimension, input descriptions, attr, engine)
  dnnl_concat_primitive_desc_create: {
    parameters: ["buffer", "buffer", "i32", "i32", "buffer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  // Post-ops (the fused convolutions of conv_pieces.ts): an attribute holding a list of them.
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32", optional: true },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  dnnl_primitive_attr_set_post_ops: {
    parameters: ["pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32", optional: true },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32", optional: true },
  // (post-ops, scale): dst = op(…) + scale·dst
  dnnl_post_ops_append_sum: { parameters: ["pointer", "f32"], result: "i32", optional: true },
  // (post-ops, scale, algorithm, alpha, beta)
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
    optional: true,
  },
  // (transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), row-major
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "pointer",
      "i64",
      "pointer",
      "i64",
      "f32",
      "pointer",
      "i64",
    ],
    result: "i32",
    optional: true,
  },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type ExtraLib = Deno.DynamicLibrary<typeof EXTRA_SYMBOLS>["symbols"];
type Ptr = Deno.PointerObject;

/** What a oneDNN handle is, for {@linkcode Dnnl.destroy}. */
export type HandleKind = "primitive" | "pd" | "memory";

/** A oneDNN handle a plan made and frees. */
export interface Owned {
  kind: HandleKind;
  handle: Ptr;
}

/** Records `handle` as owned and returns it. */
export type Own = <T extends Ptr>(kind: HandleKind, handle: T) => T;

/** A primitive and its memory objects, whose buffers are set at each run. */
export interface Plan {
  primitive: Ptr;
  args: ExecArgs;
  memories: Ptr[];
}

/** A primitive's weights memory and its staging, from {@linkcode Dnnl.stagedWeights}. */
export interface StagedWeights {
  /** The user's memory, on the tensor's buffer. */
  user: Ptr;
  /** The memory the primitive reads or writes: `user` itself when the layouts agree. */
  mem: Ptr;
  /** The staging buffer, kept alive with the plan; absent when the layouts agree. */
  staged?: Uint8Array;
  /** The reorder between `user` and the staging buffer; absent when the layouts agree. */
  reorder?: { primitive: Ptr; args: ExecArgs };
}

/** One oneDNN memory description, as built by {@linkcode Dnnl.memoryDesc}. */
export type MemoryDesc = Uint8Array<ArrayBuffer>;

/** A loaded oneDNN: its version, a CPU engine and stream, and helpers over its C functions. */
export class Dnnl {
  /** `"2.6.3"`. */
  readonly version: string;
  /** The library file that was opened. */
  readonly path: string;
  readonly #lib: Lib;
  readonly engine: Ptr;
  readonly stream: Ptr;
  readonly #out = new BigUint64Array(1);
  #extra: ExtraLib | undefined;

  /**
   * @example
   * ```ts
   * const dnnl = openDnnl();
   * ```
   */
  constructor(lib: Lib, path: string, version: string) {
    this.#lib = lib;
    this.path = path;
    this.version = version;
    this.engine = this.#create((out) => lib.dnnl_engine_create(out, 1, /* cpu */ 0n), "engine");
    this.stream = this.#create(
      (out) => lib.dnnl_stream_create(out, this.engine, 1 /* in order */),
      "stream",
    );
  }

  /** Throws naming `what` unless `status` is success. */
  check(status: number, what: string): void {
    if (status !== 0) {
      throw new Error(`oneDNN ${what} failed: ${STATUS[status] ?? `status ${status}`}`);
    }
  }

  #create(call: (out: Uint8Array) => number, what: string): Ptr {
    const out = new Uint8Array(this.#out.buffer);
    this.check(call(out), what);
    const p = Deno.UnsafePointer.create(this.#out[0]);
    if (p === null) throw new Error(`oneDNN ${what} returned a null handle`);
    return p;
  }

  /**
   * A float32 memory description of `dims` in format `tag`.
   *
   * @example
   * ```ts
   * dnnl.memoryDesc([64, 32, 32, 16], DNNL.tagNhwc); // dims in oneDNN's order: n, c, h, w
   * ```
   */
  memoryDesc(dims: number[], tag: number): MemoryDesc {
    const md = new Uint8Array(MD_SIZE);
    this.check(
      this.#lib.dnnl_memory_desc_init_by_tag(md, dims.length, dimsOf(dims), DNNL.f32, tag),
      `memory description of [${dims.join(", ")}]`,
    );
    return md;
  }

  /**
   * A convolution descriptor: `kind` forward (training), backward data or backward weights.
   * `dilates` counts the zeros between taps (oneDNN's convention, tfjs's dilation − 1).
   */
  convolutionDesc(
    kind: "forward" | "backwardData" | "backwardWeights",
    src: MemoryDesc,
    weights: MemoryDesc,
    dst: MemoryDesc,
    strides: number[],
    dilates: number[],
    padL: number[],
    padR: number[],
    bias: MemoryDesc | null = null,
  ): Uint8Array<ArrayBuffer> {
    const desc = new Uint8Array(CONV_DESC_SIZE);
    const geometry = [dimsOf(strides), dimsOf(dilates), dimsOf(padL), dimsOf(padR)] as const;
    const {
      dnnl_dilated_convolution_forward_desc_init: forward,
      dnnl_dilated_convolution_backward_data_desc_init: backwardData,
      dnnl_dilated_convolution_backward_weights_desc_init: backwardWeights,
    } = this.#lib;
    const [g, direct] = [geometry, DNNL.convolutionDirect];
    const status = kind === "forward"
      ? forward(
        desc,
        DNNL.forwardTraining,
        direct,
        src,
        weights,
        bias === null ? null : Deno.UnsafePointer.of(bias),
        dst,
        ...g,
      )
      : kind === "backwardData"
      ? backwardData(desc, direct, src, weights, dst, ...g)
      : backwardWeights(desc, direct, src, weights, null, dst, ...g);
    this.check(status, `convolution ${kind} description`);
    return desc;
  }

  /**
   * A primitive description of `opDesc`, with the forward one as hint for backward passes and
   * optionally a primitive attribute (post-ops, see {@linkcode postOpsAttr}).
   */
  primitiveDesc(
    opDesc: Uint8Array<ArrayBuffer>,
    hint: Ptr | null = null,
    attr: Ptr | null = null,
  ): Ptr {
    const lib = this.#lib;
    return this.#create(
      (out) => lib.dnnl_primitive_desc_create(out, opDesc, attr, this.engine, hint),
      "primitive description",
    );
  }

  /**
   * `use(attr)` with a primitive attribute carrying `postOps` in order (a `sum` adds what the
   * destination held, an `eltwise` applies that algorithm with `alpha`); the attribute and its
   * list are freed afterwards (a primitive description copies them).
   *
   * @example
   * ```ts
   * const pd = dnnl.postOpsAttr([{ sum: 1 }], (attr) => dnnl.primitiveDesc(desc, null, attr));
   * ```
   */
  postOpsAttr<T>(
    postOps: ({ sum: number } | { eltwise: number; alpha: number })[],
    use: (attr: Ptr) => T,
  ): T {
    const [create, destroy, setPostOps, opsCreate, opsDestroy, sum, eltwise] = [
      this.symbol("dnnl_primitive_attr_create"),
      this.symbol("dnnl_primitive_attr_destroy"),
      this.symbol("dnnl_primitive_attr_set_post_ops"),
      this.symbol("dnnl_post_ops_create"),
      this.symbol("dnnl_post_ops_destroy"),
      this.symbol("dnnl_post_ops_append_sum"),
      this.symbol("dnnl_post_ops_append_eltwise"),
    ];
    const attr = this.#create((out) => create(out), "primitive attribute");
    try {
      const ops = this.#create((out) => opsCreate(out), "post-ops");
      try {
        for (const op of postOps) {
          this.check(
            "sum" in op ? sum(ops, op.sum) : eltwise(ops, 1, op.eltwise, op.alpha, 0),
            "sum" in op ? "sum post-op" : "eltwise post-op",
          );
        }
        this.check(setPostOps(attr, ops), "post-ops of an attribute");
      } finally {
        opsDestroy(ops);
      }
      return use(attr);
    } finally {
      destroy(attr);
    }
  }

  /** A reorder's primitive description, from memory `src` to memory `dst` (both on the CPU). */
  reorderDesc(src: Ptr, dst: Ptr): Ptr {
    const lib = this.#lib;
    return this.#create(
      (out) =>
        lib.dnnl_reorder_primitive_desc_create(out, src, this.engine, dst, this.engine, null),
      "reorder description",
    );
  }

  /**
   * The memory description a primitive description chose for `query` (e.g. weights), the
   * `index`th; `what` names it in the error when there is none.
   */
  queryMd(pd: Ptr, query: number, index = 0, what = `query ${query}`): Ptr {
    const md = this.#lib.dnnl_primitive_desc_query_md(pd, query, index);
    if (md === null) throw new Error(`oneDNN has no memory description for ${what}`);
    return md;
  }

  /**
   * The C function `name` of {@linkcode EXTRA_SYMBOLS}; throws naming it and the library when
   * the library lacks it.
   *
   * @example
   * ```ts
   * const sgemm = dnnl.symbol("dnnl_sgemm");
   * ```
   */
  symbol<K extends keyof ExtraLib>(name: K): NonNullable<ExtraLib[K]> {
    this.#extra ??= Deno.dlopen(this.path, EXTRA_SYMBOLS).symbols;
    const f = this.#extra[name];
    if (f === null) throw new Error(`oneDNN at ${this.path} lacks ${name}`);
    return f as NonNullable<ExtraLib[K]>;
  }

  /** The name of the implementation oneDNN chose, e.g. `"brg:avx512_core"`. */
  implementation(pd: Ptr): string {
    const out = new Uint8Array(this.#out.buffer);
    this.check(
      this.#lib.dnnl_primitive_desc_query(pd, DNNL.queryImplInfoStr, 0, out),
      "implementation query",
    );
    const p = Deno.UnsafePointer.create(this.#out[0]);
    return p === null ? "unknown" : Deno.UnsafePointerView.getCString(p);
  }

  /** Whether two memory descriptions are the same layout. */
  sameMd(a: Ptr, b: Ptr): boolean {
    return this.#lib.dnnl_memory_desc_equal(a, b) !== 0;
  }

  /** Bytes a memory of description `md` occupies. */
  mdSize(md: Ptr): number {
    return Number(this.#lib.dnnl_memory_desc_get_size(md));
  }

  /** A primitive from its description. */
  primitive(pd: Ptr): Ptr {
    const lib = this.#lib;
    return this.#create((out) => lib.dnnl_primitive_create(out, pd), "primitive");
  }

  /** A memory object of description `md` without a buffer (set one with {@linkcode setHandle}). */
  memory(md: Ptr): Ptr {
    const lib = this.#lib;
    return this.#create((out) => lib.dnnl_memory_create(out, md, this.engine, null), "memory");
  }

  /** Points memory `mem` at `handle`. */
  setHandle(mem: Ptr, handle: Ptr): void {
    this.check(this.#lib.dnnl_memory_set_data_handle(mem, handle), "memory handle");
  }

  /** Runs `primitive` with `args` (pairs of argument kind and memory) and waits for it. */
  execute(primitive: Ptr, args: ExecArgs): void {
    this.check(
      this.#lib.dnnl_primitive_execute(primitive, this.stream, args.count, args.bytes),
      "execution",
    );
    this.check(this.#lib.dnnl_stream_wait(this.stream), "stream wait");
  }

  /** Points `plan`'s memories at `buffers` (in order) and runs it. */
  run(plan: Plan, buffers: Ptr[]): void {
    plan.memories.forEach((mem, i) => this.setHandle(mem, buffers[i]));
    this.execute(plan.primitive, plan.args);
  }

  /**
   * The weights memory a primitive uses, in the layout it `chosen`: the user's memory (`userMd`,
   * its buffer set at each call) when the layouts agree, else a memory on a 64-byte-aligned
   * staging buffer of its own and the reorder into it (`toChosen`) or out of it into the user's.
   *
   * @example
   * ```ts
   * const w = dnnl.stagedWeights(own, hwioMd, chosen, true); // run w.reorder, then the primitive on w.mem
   * ```
   */
  stagedWeights(own: Own, userMd: Ptr, chosen: Ptr, toChosen: boolean): StagedWeights {
    const user = own("memory", this.memory(userMd));
    if (this.sameMd(chosen, userMd)) return { user, mem: user };
    const staged = new Uint8Array(this.mdSize(chosen) + 64);
    const base = Deno.UnsafePointer.of(staged)!;
    const pad = (64 - Number(Deno.UnsafePointer.value(base) % 64n)) % 64;
    const mem = own("memory", this.memory(chosen));
    this.setHandle(mem, Deno.UnsafePointer.offset(base, pad)!);
    const [from, to, fromMem, toMem] = toChosen
      ? [userMd, chosen, user, mem]
      : [chosen, userMd, mem, user];
    const primitive = own("primitive", this.primitive(own("pd", this.reorderDesc(from, to))));
    const args = new ExecArgs([[DNNL.argSrc, fromMem], [DNNL.argDst, toMem]]);
    return { user, mem, staged, reorder: { primitive, args } };
  }

  /** Frees primitives, primitive descriptions and memory objects. */
  destroy(kind: HandleKind, handle: Ptr): void {
    const lib = this.#lib;
    if (kind === "primitive") lib.dnnl_primitive_destroy(handle);
    else if (kind === "pd") lib.dnnl_primitive_desc_destroy(handle);
    else lib.dnnl_memory_destroy(handle);
  }

  /** Frees `owned`, newest first. */
  destroyAll(owned: Owned[]): void {
    for (let i = owned.length - 1; i >= 0; i--) this.destroy(owned[i].kind, owned[i].handle);
  }

  /**
   * `make(own, owned)`, where `own` records each handle in `owned`; when `make` throws, what it
   * owned so far is freed.
   *
   * @example
   * ```ts
   * const plan = dnnl.owning((own, owned) => ({ primitive: own("primitive", p), owned }));
   * ```
   */
  owning<T>(make: (own: Own, owned: Owned[]) => T): T {
    const owned: Owned[] = [];
    const own: Own = (kind, handle) => {
      owned.push({ kind, handle });
      return handle;
    };
    try {
      return make(own, owned);
    } catch (e) {
      this.destroyAll(owned);
      throw e;
    }
  }
}

/**
 * Plans by key, made on first use and kept; beyond `limit` the oldest is dropped and `free`d.
 *
 * @example
 * ```ts
 * const plans = new PlanCache<Plan>(256, (plan) => dnnl.destroyAll(plan.owned));
 * plans.get("forward|64", () => makePlan());
 * ```
 */
export class PlanCache<P> {
  readonly #plans = new Map<string, P>();

  constructor(readonly limit: number, readonly free: (plan: P) => void) {}

  /** Number of plans held. */
  get size(): number {
    return this.#plans.size;
  }

  /** The plans held, by key, oldest first. */
  entries(): IterableIterator<[string, P]> {
    return this.#plans.entries();
  }

  /** The plan of `key`, made by `make` when new. */
  get(key: string, make: () => P): P {
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      plan = make();
      this.#plans.set(key, plan);
      if (this.#plans.size > this.limit) {
        const [oldest, old] = this.#plans.entries().next().value!;
        this.#plans.delete(oldest);
        this.free(old);
      }
    }
    return plan;
  }

  /** Frees every plan. */
  clear(): void {
    for (const plan of this.#plans.values()) this.free(plan);
    this.#plans.clear();
  }
}

/** `dnnl_exec_arg_t[]`, built once per primitive: `{ int arg; dnnl_memory_t memory; }`. */
export class ExecArgs {
  /** The C array. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Its length. */
  readonly count: number;

  /**
   * @example
   * ```ts
   * new ExecArgs([[DNNL.argSrc, srcMemory], [DNNL.argDst, dstMemory]]);
   * ```
   */
  constructor(args: [number, Ptr][]) {
    this.count = args.length;
    this.bytes = new Uint8Array(16 * args.length);
    const view = new DataView(this.bytes.buffer);
    args.forEach(([arg, mem], i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
    });
  }
}

/**
 * A `dnnl_dims_t` of `values`.
 *
 * @example
 * ```ts
 * dimsOf([2, 2]); // BigInt64Array [2n, 2n, 0n, …] (12 entries)
 * ```
 */
export function dimsOf(values: number[]): BigInt64Array<ArrayBuffer> {
  const dims = new BigInt64Array(12); // dnnl_dims_t
  values.forEach((v, i) => dims[i] = BigInt(v));
  return dims;
}

/** `dnnl_version_t`'s leading fields, the same in oneDNN 2.x and 3.x. */
export interface DnnlVersion {
  major: number;
  minor: number;
  patch: number;
}

/** Just `dnnl_version()`, which every oneDNN exports: read before binding the 2.x-only symbols. */
const VERSION_SYMBOLS = { dnnl_version: { parameters: [], result: "pointer" } } as const;

/**
 * The version in a `dnnl_version_t` at `pointer` (`{ int major, minor, patch; … }`).
 *
 * @example
 * ```ts
 * readDnnlVersion(Deno.UnsafePointer.of(new Int32Array([2, 6, 3]))); // { major: 2, minor: 6, patch: 3 }
 * ```
 */
export function readDnnlVersion(pointer: Deno.PointerValue): DnnlVersion {
  if (pointer === null) throw new Error("dnnl_version() returned null, expected a dnnl_version_t");
  const view = new Deno.UnsafePointerView(pointer);
  return { major: view.getInt32(0), minor: view.getInt32(4), patch: view.getInt32(8) };
}

/**
 * Why the oneDNN `version` found at `path` cannot run these kernels, or undefined for 2.x (the
 * only major version whose convolution API and struct layouts they bind).
 *
 * @example
 * ```ts
 * dnnlVersionProblem({ major: 3, minor: 4, patch: 1 }, "libdnnl.so.3");
 * // "oneDNN 3.4.1 found at libdnnl.so.3; this project needs oneDNN 2.x (…apt-get install libdnnl2…)"
 * ```
 */
export function dnnlVersionProblem(version: DnnlVersion, path: string): string | undefined {
  if (version.major === 2) return undefined;
  const { major, minor, patch } = version;
  return `oneDNN ${major}.${minor}.${patch} found at ${path}; this project needs oneDNN 2.x ` +
    "(its convolution API, which 3.x replaced): apt-get install libdnnl2 on Debian/Ubuntu";
}

/**
 * Opens oneDNN 2.x. Throws an error naming what failed: no FFI permission, no library (with the
 * package that provides it), or an unsupported version (naming the version and file found).
 *
 * @example
 * ```ts
 * const { version } = openDnnl();
 * ```
 */
export function openDnnl(): Dnnl {
  let lastError = "";
  let refused: string | undefined;
  const named = envValue(LIBRARY_ENV_VAR)?.trim() || undefined;
  // OpenMP threads that sleep when idle rather than spin, so that they take no core from
  // tfjs-wasm's pool, which computes between oneDNN calls (read by libgomp when it loads).
  if (!envValue("OMP_WAIT_POLICY")?.trim()) trySetEnv("OMP_WAIT_POLICY", "PASSIVE");
  for (const path of named === undefined ? LIBRARY_NAMES : [named]) {
    // The version first, with only the symbol every oneDNN has: binding the 2.x symbols at once
    // would fail on 3.x with "symbol not found" before its version could be named.
    let version: DnnlVersion;
    try {
      const probe = Deno.dlopen(path, VERSION_SYMBOLS);
      try {
        version = readDnnlVersion(probe.symbols.dnnl_version());
      } finally {
        probe.close();
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new Error("loading oneDNN needs --allow-ffi");
      }
      lastError = e instanceof Error ? e.message : String(e);
      if (named !== undefined && !/cannot open|No such file|not found/i.test(lastError)) {
        throw new Error(`${named} (${LIBRARY_ENV_VAR}) is not a usable oneDNN 2.x: ${lastError}`);
      }
      continue;
    }
    const problem = dnnlVersionProblem(version, path);
    if (problem !== undefined) {
      // A later name may still be a 2.x (libdnnl.so can be a 3.x's while a 2.x is elsewhere).
      refused ??= problem;
      continue;
    }
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(
        `${path} (oneDNN ${version.major}.${version.minor}) lacks a 2.x symbol: ${why}`,
      );
    }
    return new Dnnl(lib.symbols, path, `${version.major}.${version.minor}.${version.patch}`);
  }
  if (refused !== undefined) throw new Error(refused);
  throw new Error(
    `oneDNN not found (${lastError.split("\n")[0]}): apt-get install libdnnl2 on Debian/Ubuntu ` +
      "(oneDNN 2.x, also packaged as onednn or dnnl elsewhere)",
  );
}
