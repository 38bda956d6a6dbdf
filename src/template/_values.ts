/**
 * The values a template over a `map[string]string` can hold, and how Go
 * prints, tests and names them.
 *
 * @module
 */

/**
 * Go's `uint8`, the only non-`int` number a template can make (`index` of a
 * string); kept apart from `int` because Go prints and names it differently.
 */
export class ByteValue {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/**
 * A value during execution. `null` is Go's invalid `reflect.Value` (a missing
 * key in default mode, `nil`), `number` is Go's `int`.
 */
export type Value =
  | string
  | boolean
  | number
  | ByteValue
  | null
  | ReadonlyMap<string, string>;

export function isMap(value: Value): value is ReadonlyMap<string, string> {
  return typeof value === "object" && value !== null &&
    !(value instanceof ByteValue);
}

/** Go's `isTrue`: the zero value of each type is false. */
export function isTrue(value: Value): boolean {
  if (typeof value === "string") return value.length > 0;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (value === null) return false;
  if (value instanceof ByteValue) return value.value !== 0;
  return value.size > 0;
}

/** The Go type name of a value, for error messages. */
export function typeName(value: Value): string {
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "int";
  if (value === null) return "<nil>";
  if (value instanceof ByteValue) return "uint8";
  return "map[string]string";
}

/** How Go's `fmt.Print` (through text/template's `printableValue`) shows a value. */
export function formatValue(value: Value): string {
  if (typeof value === "string") return value;
  if (value === null) return "<no value>";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return String(value);
  if (value instanceof ByteValue) return String(value.value);
  let out = "map[";
  let first = true;
  for (const [key, item] of value) {
    out += first ? key + ":" + item : " " + key + ":" + item;
    first = false;
  }
  return out + "]";
}
