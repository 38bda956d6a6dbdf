/**
 * Go's built-in template functions (`text/template/funcs.go`) whose result
 * depends only on their argument values: comparison, indexing, slicing and
 * length. The executor evaluates the arguments and calls these; an error is
 * returned as a {@linkcode CallError} for it to locate.
 *
 * @module
 */

import { decodeUtf8, encodeUtf8, utf8Length } from "../_utf8.ts";
import {
  compareUtf8,
  formatValue,
  type GoComplex,
  GoUint8,
  isMap,
  typeName,
  type Value,
} from "./_values.ts";

/**
 * How a function takes its arguments, as Go's `evalCall` sees its
 * signature: `fixed` parameters, then any number more when `variadic`.
 * `string` parameters reject non-string literals while parsing arguments;
 * the rest accept any value.
 */
export interface FuncSpec {
  readonly fixed: number;
  readonly variadic: boolean;
  /** Parameter indexes of type `string` (Go's `printf` format, `json`). */
  readonly stringParams: number;
}

const spec = (fixed: number, variadic: boolean, stringParams = 0) => ({
  fixed,
  variadic,
  stringParams,
});

/** Every function a template may call; `json` is this module's extension. */
export const FUNCS: ReadonlyMap<string, FuncSpec> = new Map([
  ["and", spec(1, true)],
  ["or", spec(1, true)],
  ["not", spec(1, false)],
  ["len", spec(1, false)],
  ["index", spec(1, true)],
  ["slice", spec(1, true)],
  ["eq", spec(1, true)],
  ["ne", spec(2, false)],
  ["lt", spec(2, false)],
  ["le", spec(2, false)],
  ["gt", spec(2, false)],
  ["ge", spec(2, false)],
  ["html", spec(0, true)],
  ["js", spec(0, true)],
  ["urlquery", spec(0, true)],
  ["print", spec(0, true)],
  ["println", spec(0, true)],
  ["printf", spec(1, true, 1)],
  ["json", spec(1, false, 1)],
]);

/** A function's error, which Go reports as `error calling <name>: …`. */
export class CallError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

type Kind = "bool" | "int" | "uint" | "float" | "complex" | "string" | "";

// Go's `basicKind` by the type name the value prints as; the map and nil
// have none.
const KINDS: ReadonlyMap<string, Kind> = new Map([
  ["string", "string"],
  ["bool", "bool"],
  ["int", "int"],
  ["float64", "float"],
  ["uint8", "uint"],
  ["complex128", "complex"],
]);

/** Go's `basicKind`: `""` for the map and invalid values. */
function basicKind(value: Value): Kind {
  return KINDS.get(typeName(value)) ?? "";
}

/** An integer value (`int` or `uint8`) as a bigint. */
function intOf(value: Value): bigint {
  return value instanceof GoUint8 ? BigInt(value.uint8) : value as bigint;
}

/** Go's `eq`. */
export function eq(
  first: Value,
  others: readonly Value[],
): boolean | CallError {
  if (others.length === 0) {
    return new CallError("missing argument for comparison");
  }
  const k1 = basicKind(first);
  for (const other of others) {
    const k2 = basicKind(other);
    let truth = false;
    if (k1 !== k2) {
      if (
        (k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")
      ) {
        truth = intOf(first) === intOf(other);
      } else if (first !== null && other !== null) {
        return new CallError("incompatible types for comparison");
      }
    } else if (k1 === "int" || k1 === "uint") {
      truth = intOf(first) === intOf(other);
    } else if (k1 === "complex") {
      const a = first as GoComplex;
      const b = other as GoComplex;
      truth = a.real === b.real && a.imag === b.imag;
    } else if (k1 !== "") {
      truth = first === other;
    } else if (first === null || other === null) {
      truth = first === other;
    } else {
      return new CallError(
        `non-comparable type ${formatValue(other)}: map[string]string`,
      );
    }
    if (truth) return true;
  }
  return false;
}

/** Go's `lt`. */
export function lt(a: Value, b: Value): boolean | CallError {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === "" || k2 === "") {
    return new CallError("invalid type for comparison");
  }
  if (k1 !== k2) {
    if (
      (k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")
    ) {
      return intOf(a) < intOf(b);
    }
    return new CallError("incompatible types for comparison");
  }
  switch (k1) {
    case "bool":
    case "complex":
      return new CallError("invalid type for comparison");
    case "string":
      return compareUtf8(a as string, b as string) < 0;
    case "float":
      return (a as number) < (b as number);
  }
  return intOf(a) < intOf(b);
}

/** Go's `le`: `lt` or `eq`. */
export function le(a: Value, b: Value): boolean | CallError {
  const less = lt(a, b);
  return less === false ? eq(a, [b]) : less;
}

/** Go's `len`. */
export function len(value: Value): Value | CallError {
  if (typeof value === "string") return BigInt(utf8Length(value));
  if (isMap(value)) return BigInt(value.size);
  // Go's length() asks an invalid reflect.Value for its type, which panics;
  // the panic becomes this error.
  return new CallError(
    value === null
      ? "reflect: call of reflect.Value.Type on zero Value"
      : `len of type ${typeName(value)}`,
  );
}

/** Go's `indexArg`: an integer index from 0 to `cap`. */
function indexArg(value: Value, cap: number): number | CallError {
  if (value === null) return new CallError("cannot index slice/array with nil");
  if (typeof value !== "bigint" && !(value instanceof GoUint8)) {
    return new CallError(
      `cannot index slice/array with type ${typeName(value)}`,
    );
  }
  const x = intOf(value);
  if (x < 0n || x > BigInt(cap)) {
    return new CallError(`index out of range: ${x}`);
  }
  return Number(x);
}

/** Go's `index`. */
export function index(
  item: Value,
  indexes: readonly Value[],
): Value | CallError {
  if (item === null) return new CallError("index of untyped nil");
  for (const key of indexes) {
    if (isMap(item)) {
      if (key === null) {
        return new CallError("value is nil; should be of type string");
      }
      if (typeof key !== "string") {
        return new CallError(
          `value has type ${typeName(key)}; should be string`,
        );
      }
      item = item.get(key) ?? "";
    } else if (typeof item === "string") {
      const bytes = encodeUtf8(item);
      const x = indexArg(key, bytes.length);
      if (x instanceof CallError) return x;
      if (x === bytes.length) {
        return new CallError("reflect: string index out of range");
      }
      item = new GoUint8(bytes[x] as number);
    } else {
      return new CallError(`can't index item of type ${typeName(item)}`);
    }
  }
  return item;
}

/**
 * Go's `slice` of a string, by UTF-8 byte offsets. A cut inside a UTF-8
 * sequence would make bytes that are not text, which a JavaScript string
 * cannot hold: that is an error here, where Go returns the broken bytes.
 */
export function slice(
  item: Value,
  indexes: readonly Value[],
): Value | CallError {
  if (item === null) return new CallError("slice of untyped nil");
  if (indexes.length > 3) {
    return new CallError(`too many slice indexes: ${indexes.length}`);
  }
  if (typeof item !== "string") {
    return new CallError(`can't slice item of type ${typeName(item)}`);
  }
  if (indexes.length === 3) {
    return new CallError("cannot 3-index slice a string");
  }
  const bytes = encodeUtf8(item);
  const idx = [0, bytes.length];
  for (let i = 0; i < indexes.length; i++) {
    const x = indexArg(indexes[i] as Value, bytes.length);
    if (x instanceof CallError) return x;
    idx[i] = x;
  }
  const [from, to] = idx as [number, number];
  if (from > to) return new CallError(`invalid slice index: ${from} > ${to}`);
  for (const cut of [from, to]) {
    if (cut < bytes.length && ((bytes[cut] as number) & 0xc0) === 0x80) {
      return new CallError(
        `slice index ${cut} is inside a UTF-8 sequence; the result would not be text`,
      );
    }
  }
  if (from === 0 && to === bytes.length) return item;
  return decodeUtf8(bytes.subarray(from, to));
}
