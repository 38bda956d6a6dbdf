/**
 * The events of this store's own writes, as the engine builds them from
 * what committed.
 *
 * @module
 */

import type { EventType, StoreEvent } from "./events.ts";

/**
 * An event of this store's own.
 *
 * @param type The change.
 * @param group The group.
 * @param key The key (`""` for a group delete).
 * @param timestamp The store clock.
 * @returns The event.
 */
export function event(
  type: EventType,
  group: string,
  key: string,
  timestamp: number,
): StoreEvent {
  return { type, group, key, timestamp, origin: "local" };
}

/**
 * The `set` event of a written value.
 *
 * @param group The group.
 * @param key The key.
 * @param timestamp The store clock.
 * @param value The value written.
 * @param expiresAt Its expiry, or `null` for none.
 * @returns The event.
 */
export function setEvent(
  group: string,
  key: string,
  timestamp: number,
  value: string,
  expiresAt: number | null,
): StoreEvent {
  // Built whole, in the order of `event()` and then `value`, so that every
  // set event has one of two shapes and serialises as it always did.
  if (expiresAt === null) {
    return { type: "set", group, key, timestamp, origin: "local", value };
  }
  return {
    type: "set",
    group,
    key,
    timestamp,
    origin: "local",
    value,
    expiresAt,
  };
}
