/**
 * The values of literal expressions in TypeScript syntax trees (the `typescript` package's
 * parser, as in `syntax.ts`): numbers (with `_` separators, hex, a sign, `Infinity`, `NaN`),
 * strings in any quotes (a template without `${}`), `true`/`false`/`null`/`undefined`, arrays and
 * objects of those; `as T`, `satisfies T`, `<T>` and parentheses around a literal are looked
 * through. Also the values a literal type union allows (`"a" | "b"`). Private helper of
 * `parameters.ts`.
 *
 * @module
 */
import ts from "typescript";

/** What {@linkcode literalValue} returns for an expression that is not such a literal. */
export const NOT_LITERAL: unique symbol = Symbol("not a literal");

/** The expression inside type assertions and parentheses (`("a" as const)` → `"a"`). */
export function unwrap(node: ts.Expression): ts.Expression {
  while (
    ts.isParenthesizedExpression(node) || ts.isAsExpression(node) ||
    ts.isSatisfiesExpression(node) || ts.isTypeAssertionExpression(node)
  ) node = node.expression;
  return node;
}

/** The types asserted around an expression, outermost first (`x as A satisfies B` → B, A). */
export function assertedTypes(node: ts.Expression): ts.TypeNode[] {
  const types: ts.TypeNode[] = [];
  while (true) {
    if (ts.isParenthesizedExpression(node)) node = node.expression;
    else if (
      ts.isAsExpression(node) || ts.isSatisfiesExpression(node) ||
      ts.isTypeAssertionExpression(node)
    ) {
      types.push(node.type);
      node = node.expression;
    } else return types;
  }
}

const NAMED: Record<string, unknown> = { undefined: undefined, Infinity: Infinity, NaN: NaN };

/** The value of a literal expression, or {@linkcode NOT_LITERAL}. */
export function literalValue(node: ts.Expression): unknown {
  node = unwrap(node);
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isNumericLiteral(node)) return Number(node.text); // the parser's text is decimal
  if (node.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (node.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (node.kind === ts.SyntaxKind.NullKeyword) return null;
  if (ts.isIdentifier(node)) {
    return Object.hasOwn(NAMED, node.text) ? NAMED[node.text] : NOT_LITERAL;
  }
  if (ts.isPrefixUnaryExpression(node)) return signed(node);
  if (ts.isArrayLiteralExpression(node)) return arrayValue(node);
  if (ts.isObjectLiteralExpression(node)) return objectValue(node);
  return NOT_LITERAL;
}

function signed(node: ts.PrefixUnaryExpression): unknown {
  const minus = node.operator === ts.SyntaxKind.MinusToken;
  if (!minus && node.operator !== ts.SyntaxKind.PlusToken) return NOT_LITERAL;
  const value = literalValue(node.operand);
  if (typeof value !== "number") return NOT_LITERAL;
  return minus ? -value : value;
}

function arrayValue(node: ts.ArrayLiteralExpression): unknown {
  const out: unknown[] = [];
  for (const element of node.elements) {
    const value = literalValue(element); // a spread or a hole is not a literal
    if (value === NOT_LITERAL) return NOT_LITERAL;
    out.push(value);
  }
  return out;
}

function objectValue(node: ts.ObjectLiteralExpression): unknown {
  const out: Record<string, unknown> = {};
  for (const p of node.properties) {
    // Shorthand, spread, methods and computed keys are code, not data.
    if (!ts.isPropertyAssignment(p)) return NOT_LITERAL;
    const key = p.name;
    if (!ts.isIdentifier(key) && !ts.isStringLiteral(key) && !ts.isNumericLiteral(key)) {
      return NOT_LITERAL;
    }
    const value = literalValue(p.initializer);
    if (value === NOT_LITERAL) return NOT_LITERAL;
    out[key.text] = value;
  }
  return out;
}

/**
 * The values a type of literals allows (`"a" | "b"`, `1 | 2 | null`, `true`), or undefined when
 * the type is anything else (`string`, `number[]`, `"a" | string`, `const`).
 */
export function literalChoices(type: ts.TypeNode): unknown[] | undefined {
  while (ts.isParenthesizedTypeNode(type)) type = type.type;
  const members = ts.isUnionTypeNode(type) ? type.types : [type];
  const values: unknown[] = [];
  for (const member of members) {
    let value: unknown = NOT_LITERAL;
    if (member.kind === ts.SyntaxKind.UndefinedKeyword) value = undefined;
    else if (ts.isLiteralTypeNode(member)) value = literalValue(member.literal as ts.Expression);
    if (value === NOT_LITERAL) return undefined;
    values.push(value);
  }
  return values;
}
