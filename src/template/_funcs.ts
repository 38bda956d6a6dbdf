/**
 * Go's built-in template functions whose behaviour does not depend on the
 * executor: comparison and indexing.
 *
 * @module
 */

import { encodeUtf8 } from "../_utf8.ts";
import {
  ByteValue,
  formatValue,
  isMap,
  typeName,
  type Value,
} from "./_values.ts";

export const FUNCTIONS: ReadonlySet<string> = new Set([
  "and",
  "eq",
  "html",
  "index",
  "js",
  "json",
  "len",
  "ne",
  "not",
  "or",
  "urlquery",
]);

/** Go's `kind` of a value for `eq`. */
export function basicKind(value: Value): string {
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "int";
  if (value instanceof ByteValue) return "uint";
  return "invalid";
}

export function numberOf(value: Value): number {
  return value instanceof ByteValue ? value.value : value as number;
}

/** Go's `eq`; a string result is the error message. */
export function equals(
  first: Value,
  others: readonly Value[],
): boolean | string {
  if (others.length === 0) return "missing argument for comparison";
  const k1 = basicKind(first);
  for (const other of others) {
    const k2 = basicKind(other);
    let truth = false;
    if (k1 !== k2) {
      if (
        (k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")
      ) {
        truth = numberOf(first) === numberOf(other);
      } else if (first !== null && other !== null) {
        return "incompatible types for comparison";
      }
    } else if (k1 !== "invalid") {
      truth = k1 === "int" || k1 === "uint"
        ? numberOf(first) === numberOf(other)
        : first === other;
    } else if (first === null || other === null) {
      truth = first === other;
    } else {
      return `non-comparable type ${formatValue(other)}: map[string]string`;
    }
    if (truth) return true;
  }
  return false;
}

export class IndexError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** Go's `index`. */
export function index(
  item: Value,
  indexes: readonly Value[],
): Value | IndexError {
  if (item === null) return new IndexError("index of untyped nil");
  for (const key of indexes) {
    if (isMap(item)) {
      if (key === null) {
        return new IndexError("value is nil; should be of type string");
      }
      if (typeof key !== "string") {
        return new IndexError(
          `value has type ${typeName(key)}; should be string`,
        );
      }
      item = item.get(key) ?? "";
    } else if (typeof item === "string") {
      if (key === null) {
        return new IndexError("cannot index slice/array with nil");
      }
      if (typeof key !== "number" && !(key instanceof ByteValue)) {
        return new IndexError(
          `cannot index slice/array with type ${typeName(key)}`,
        );
      }
      const bytes = encodeUtf8(item);
      const x = numberOf(key);
      if (x < 0 || x > bytes.length) {
        return new IndexError(`index out of range: ${x}`);
      }
      if (x === bytes.length) {
        return new IndexError("reflect: string index out of range");
      }
      item = new ByteValue(bytes[x] as number);
    } else {
      return new IndexError(`can't index item of type ${typeName(item)}`);
    }
  }
  return item;
}
