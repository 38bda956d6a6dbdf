/**
 * The values a template over a `map[string]string` can hold, and how Go
 * prints, tests and names them. The representation is the one `_fmt.ts`
 * formats: `bigint` is Go's `int`, `number` is `float64`.
 *
 * @module
 */

import { type FmtArg, GoComplex, goTypeName, GoUint8, sprint } from "./_fmt.ts";

export { GoComplex, GoUint8 };

/**
 * A value during execution. `null` is Go's invalid `reflect.Value` (a missing
 * key in default mode) or a nil interface.
 */
export type Value = FmtArg;

/** The data map, Go's `map[string]string`. */
export type GoMap = ReadonlyMap<string, string>;

export function isMap(value: Value): value is GoMap {
  return typeof value === "object" && value !== null &&
    !(value instanceof GoUint8) && !(value instanceof GoComplex);
}

/** Go's `isTrue`: the zero value of each type is false. */
export function isTrue(value: Value): boolean {
  switch (typeof value) {
    case "string":
      return value.length > 0;
    case "boolean":
      return value;
    case "bigint":
      return value !== 0n;
    case "number":
      return value !== 0;
  }
  if (value === null) return false;
  if (value instanceof GoUint8) return value.uint8 !== 0;
  if (value instanceof GoComplex) return value.real !== 0 || value.imag !== 0;
  return value.size > 0;
}

/** The Go type name of a value, for error messages. */
export function typeName(value: Value): string {
  return goTypeName(value);
}

/** How an action prints its value: Go's `printValue`. */
export function formatValue(value: Value): string {
  if (typeof value === "string") return value;
  if (value === null) return "<no value>";
  return sprint([value]);
}

/** Go's `int` of a literal or a length. */
export function goInt(n: number): bigint {
  return BigInt(n);
}

/**
 * Compares as Go compares strings: by UTF-8 bytes, i.e. by code points,
 * which differs from UTF-16 order only above U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
