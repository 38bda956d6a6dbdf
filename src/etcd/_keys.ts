/**
 * How groups, keys and values are laid out in etcd's flat byte keyspace.
 *
 * A data key is `prefix + "d/" + group' + 0x00 + key`, where `group'` is the
 * group's UTF-8 with bytes 0x00 and 0x01 escaped as 0x01 0x01 and 0x01 0x02.
 * Escaping only the two lowest bytes, byte by byte, keeps the encoding
 * order-preserving (etcd compares bytes, and UTF-8 byte order is code point
 * order, as SQLite and Go sort) and prefix-preserving (the encoding of a
 * group prefix is a byte prefix of the encoding of every group it starts),
 * while the 0x00 terminator ends one group below every longer one. The key
 * comes last, so it needs no escaping: NUL and `/` are ordinary bytes.
 *
 * A value is `expiresAt + "\n" + tag + "\n" + value`: the deadline travels
 * with the value, so expiry is exact on read whatever etcd's leases do (they
 * only clean up), and the writer's unique tag lets a write whose answer was
 * lost be recognised when it is retried.
 *
 * Markers under `prefix + "m/"` are written in the same revision as the
 * writes they describe: the groups a revision deleted whole, and under
 * `m/w/` the marker that makes each write apply at most once.
 *
 * @module
 */

import { decodeUtf8 } from "../_utf8.ts";

const encoder = new TextEncoder();

/** The layout of one store prefix. */
export class KeySpace {
  /** Every key of this store starts with these bytes. */
  readonly root: Uint8Array;
  /** Every data key starts with these bytes. */
  readonly data: Uint8Array;
  /** The marker naming the groups a revision deleted whole. */
  readonly groupMarker: Uint8Array;
  /** Where the markers of writes live (see `_once.ts`). */
  readonly writeMarkers: Uint8Array;

  /** @param prefix The store's prefix, such as `"store/"`. */
  constructor(prefix: string) {
    this.root = encoder.encode(prefix);
    this.data = concat(this.root, encoder.encode("d/"));
    this.groupMarker = concat(this.root, encoder.encode("m/deleted-groups"));
    this.writeMarkers = concat(this.root, encoder.encode("m/w/"));
  }

  /**
   * The etcd key of a group's key.
   *
   * @param group The group.
   * @param key The key.
   * @returns Its bytes.
   */
  key(group: string, key: string): Uint8Array {
    return concat(this.groupStart(group), encoder.encode(key));
  }

  /**
   * Where a group's keys start; with {@linkcode prefixEnd}, its range.
   *
   * @param group The group.
   * @returns The data prefix, the escaped group and its terminator.
   */
  groupStart(group: string): Uint8Array {
    return concat(this.data, escape(encoder.encode(group)), ZERO);
  }

  /**
   * Where the groups starting with `prefix` start.
   *
   * @param prefix A group prefix.
   * @returns The data prefix and the escaped group prefix.
   */
  groupsStart(prefix: string): Uint8Array {
    return concat(this.data, escape(encoder.encode(prefix)));
  }

  /**
   * Splits a data key back into its group and key.
   *
   * @param bytes An etcd key.
   * @returns `[group, key]`, or `undefined` for a key that is not data.
   */
  parse(bytes: Uint8Array): [string, string] | undefined {
    if (!startsWith(bytes, this.data)) return undefined;
    const group: number[] = [];
    let i = this.data.length;
    for (; i < bytes.length; i++) {
      const b = bytes[i] as number;
      if (b === 0) break;
      if (b === 1) group.push((bytes[++i] as number) - 1);
      else group.push(b);
    }
    if (i >= bytes.length) return undefined;
    try {
      return [
        decodeUtf8(new Uint8Array(group), true),
        decodeUtf8(bytes.subarray(i + 1), true),
      ];
    } catch {
      return undefined;
    }
  }
}

/** A stored value and its deadline. */
export interface StoredValue {
  readonly value: string;
  readonly expiresAt: number | undefined;
  readonly tag: string;
}

/**
 * Encodes a value with its deadline and the writer's tag.
 *
 * @param value The value.
 * @param expiresAt Its deadline, ms epoch, if any.
 * @param tag A tag unique to this write.
 * @returns The bytes to store.
 */
export function encodeValue(
  value: string,
  expiresAt: number | undefined,
  tag: string,
): Uint8Array {
  return encoder.encode(`${expiresAt ?? ""}\n${tag}\n${value}`);
}

/**
 * Decodes a value written by {@linkcode encodeValue}.
 *
 * @param bytes The stored bytes.
 * @returns The value, or `undefined` for bytes of another writer.
 */
export function decodeValue(bytes: Uint8Array): StoredValue | undefined {
  let text: string;
  try {
    text = decodeUtf8(bytes, true);
  } catch {
    return undefined;
  }
  const first = text.indexOf("\n");
  const second = text.indexOf("\n", first + 1);
  if (first < 0 || second < 0) return undefined;
  const head = text.slice(0, first);
  const expiresAt = head === "" ? undefined : Number(head);
  if (expiresAt !== undefined && !Number.isSafeInteger(expiresAt)) {
    return undefined;
  }
  return {
    value: text.slice(second + 1),
    expiresAt,
    tag: text.slice(first + 1, second),
  };
}

/**
 * The smallest byte string above every string starting with `prefix`: the
 * `range_end` of a prefix range.
 *
 * @param prefix Some bytes.
 * @returns The end of the range; `[0]` (every key) when `prefix` is all
 * 0xff.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

/**
 * Standard base64 of some bytes, as the JSON gateway expects.
 *
 * @param bytes The bytes.
 * @returns Their base64.
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * The bytes of a base64 string from the gateway.
 *
 * @param text Base64, or `undefined` for an empty field.
 * @returns The bytes.
 */
export function fromBase64(text: string | undefined): Uint8Array {
  if (text === undefined || text === "") return new Uint8Array(0);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The UTF-8 bytes of a string.
 *
 * @param text A string.
 * @returns Its bytes.
 */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

const ZERO = new Uint8Array([0]);

function escape(bytes: Uint8Array): Uint8Array {
  if (!bytes.some((b) => b < 2)) return bytes;
  const out: number[] = [];
  for (const b of bytes) {
    if (b < 2) out.push(1, b + 1);
    else out.push(b);
  }
  return new Uint8Array(out);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[i] !== prefix[i]) return false;
  }
  return true;
}
