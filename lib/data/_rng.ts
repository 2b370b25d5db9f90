/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) used for
 * shuffling, subsetting, augmentation and the synthetic dataset. Streams are derived from a seed
 * and any number of labels, so independent uses of one seed (e.g. the shuffle order and the
 * augmentation draws of one epoch) never share draws and each can be reproduced on its own.
 *
 * @example
 * ```ts
 * import { Rng } from "./_rng.ts";
 * const rng = new Rng(42, "shuffle", 0);
 * rng.int(10); // an integer in [0, 10)
 * ```
 * @module
 */

/** Mixes a 32-bit state (splitmix32's finaliser). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** Hashes a seed and a list of labels into one 32-bit value. */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const lo = Math.trunc(seed) >>> 0;
  const hi = Math.trunc(seed / 0x100000000) >>> 0;
  let h = mix32(lo ^ 0x9e3779b9);
  h = mix32(h ^ hi);
  for (const label of labels) {
    const text = String(label);
    h = mix32(h ^ 0x85ebca6b ^ text.length);
    for (let i = 0; i < text.length; i++) h = mix32(h ^ text.charCodeAt(i));
  }
  return h;
}

/** xoshiro128** generator; see the module doc. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare: number | undefined;

  /** A generator for `seed` and the stream named by `labels`. */
  constructor(seed: number, ...labels: (string | number)[]) {
    let x = deriveSeed(seed, ...labels);
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      return mix32(x);
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The next unsigned 32-bit integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.uint32() / 0x100000000;
  }

  /** A float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** An integer in [0, n) without modulo bias. */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000)) throw new RangeError(`int(n) needs 1 ≤ n ≤ 2^32, got ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    let v: number;
    do v = this.uint32(); while (v >= limit);
    return v % n;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A standard normal draw (Box–Muller, the second value is kept for the next call). */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * this.float();
    this.#spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
