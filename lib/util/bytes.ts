/**
 * Byte-array helpers shared by the file formats the project writes (PNG, tar, ZMTP frames) and
 * the base64 of embedded images.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 * @module
 */

/**
 * Concatenates byte arrays into one new array.
 *
 * @example
 * ```ts
 * concatBytes([]); // Uint8Array []
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Encodes bytes as base64 (in chunks: spreading a large array into one call would overflow the
 * stack).
 *
 * @example
 * ```ts
 * bytesToBase64(new Uint8Array([104, 105])); // "aGk="
 * ```
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/**
 * Decodes base64 into bytes.
 *
 * @example
 * ```ts
 * base64ToBytes("aGk="); // Uint8Array [104, 105]
 * ```
 */
export function base64ToBytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
