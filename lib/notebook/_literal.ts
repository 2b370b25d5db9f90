/**
 * A parser for the JSON-ish literals of TypeScript parameter declarations: numbers (with `_`
 * separators, hex, `-`/`+`, `Infinity`, `NaN`), strings in single, double or back quotes
 * (without `${}`), `true`/`false`/`null`/`undefined`, arrays and objects (quoted or bare keys,
 * trailing commas). Private helper of `parameters.ts`.
 *
 * @module
 */

/** Thrown when the text at a position is not such a literal. */
export class LiteralSyntaxError extends Error {
  constructor(message: string, readonly pos: number) {
    super(message);
    this.name = "LiteralSyntaxError";
  }
}

/** Skips whitespace and comments from `pos`; returns the new position. */
export function skipSpace(src: string, pos: number): number {
  while (pos < src.length) {
    const ch = src[pos];
    if (/\s/.test(ch)) pos++;
    else if (src.startsWith("//", pos)) {
      const end = src.indexOf("\n", pos);
      pos = end < 0 ? src.length : end + 1;
    } else if (src.startsWith("/*", pos)) {
      const end = src.indexOf("*/", pos + 2);
      pos = end < 0 ? src.length : end + 2;
    } else break;
  }
  return pos;
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
  v: "\v",
  "0": "\0",
};

function parseString(src: string, pos: number): { value: string; end: number } {
  const quote = src[pos];
  let out = "";
  let i = pos + 1;
  while (i < src.length) {
    const ch = src[i];
    if (ch === quote) return { value: out, end: i + 1 };
    if (quote === "`" && ch === "$" && src[i + 1] === "{") {
      throw new LiteralSyntaxError("template strings with ${} are not literals", i);
    }
    if (ch === "\n" && quote !== "`") break;
    if (ch === "\\") {
      const next = src[i + 1];
      if (next === "u") {
        const braced = src[i + 2] === "{";
        const hex = braced ? src.slice(i + 3, src.indexOf("}", i)) : src.slice(i + 2, i + 6);
        out += String.fromCodePoint(parseInt(hex, 16));
        i += braced ? hex.length + 4 : 6;
      } else if (next === "x") {
        out += String.fromCharCode(parseInt(src.slice(i + 2, i + 4), 16));
        i += 4;
      } else if (next === "\n") {
        i += 2; // line continuation
      } else {
        out += ESCAPES[next] ?? next;
        i += 2;
      }
      continue;
    }
    out += ch;
    i++;
  }
  throw new LiteralSyntaxError("unterminated string", pos);
}

const NUMBER =
  /^[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?|Infinity|NaN)/;
const IDENT = /^[A-Za-z_$][\w$]*/;

/** Parses one literal starting at `pos` (after whitespace); returns its value and end. */
export function parseLiteral(src: string, pos: number): { value: unknown; end: number } {
  pos = skipSpace(src, pos);
  const ch = src[pos];
  if (ch === '"' || ch === "'" || ch === "`") return parseString(src, pos);
  if (ch === "[") {
    const arr: unknown[] = [];
    let i = skipSpace(src, pos + 1);
    while (src[i] !== "]") {
      const item = parseLiteral(src, i);
      arr.push(item.value);
      i = skipSpace(src, item.end);
      if (src[i] === ",") i = skipSpace(src, i + 1);
      else if (src[i] !== "]") throw new LiteralSyntaxError("expected , or ] in array", i);
    }
    return { value: arr, end: i + 1 };
  }
  if (ch === "{") {
    const obj: Record<string, unknown> = {};
    let i = skipSpace(src, pos + 1);
    while (src[i] !== "}") {
      let key: string;
      if (src[i] === '"' || src[i] === "'") {
        const k = parseString(src, i);
        key = k.value;
        i = k.end;
      } else {
        const m = IDENT.exec(src.slice(i)) ?? /^\d+/.exec(src.slice(i));
        if (!m) throw new LiteralSyntaxError("expected a property name", i);
        key = m[0];
        i += m[0].length;
      }
      i = skipSpace(src, i);
      if (src[i] !== ":") throw new LiteralSyntaxError("expected : in object", i);
      const item = parseLiteral(src, i + 1);
      obj[key] = item.value;
      i = skipSpace(src, item.end);
      if (src[i] === ",") i = skipSpace(src, i + 1);
      else if (src[i] !== "}") throw new LiteralSyntaxError("expected , or } in object", i);
    }
    return { value: obj, end: i + 1 };
  }
  const rest = src.slice(pos);
  const word = IDENT.exec(rest)?.[0];
  if (word === "true" || word === "false") {
    return { value: word === "true", end: pos + word.length };
  }
  if (word === "null") return { value: null, end: pos + 4 };
  if (word === "undefined") return { value: undefined, end: pos + 9 };
  const num = NUMBER.exec(rest);
  if (num && num[0] !== "" && !/^[+-]$/.test(num[0])) {
    const text = num[0].replaceAll("_", "");
    const sign = text.startsWith("-") ? -1 : 1;
    const body = text.replace(/^[+-]/, "");
    return { value: sign * Number(body), end: pos + num[0].length };
  }
  throw new LiteralSyntaxError("not a literal", pos);
}
