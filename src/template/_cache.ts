/**
 * A least-recently-used cache of parsed templates bounded in bytes: the
 * source text plus the parsed tree's estimated size, so that many large
 * templates cannot hold more than the budget.
 *
 * @module
 */

/** What the cache holds: anything with an estimated `size` in bytes. */
export interface Sized {
  readonly size: number;
}

/** The default byte budget of a {@linkcode TemplateCache}: 32 MiB. */
export const DEFAULT_TEMPLATE_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Maps template sources to parsed templates, evicting the least recently
 * used when the total size passes `maxBytes`. A template larger than a
 * quarter of the budget is not kept at all.
 */
export class TemplateCache<T extends Sized> {
  readonly #parse: (source: string) => T;
  readonly #maxBytes: number;
  readonly #entries = new Map<string, T>();
  #bytes = 0;

  /**
   * @param parse Parses a source; its errors propagate from {@linkcode get}.
   * @param maxBytes The byte budget.
   */
  constructor(
    parse: (source: string) => T,
    maxBytes = DEFAULT_TEMPLATE_CACHE_BYTES,
  ) {
    this.#parse = parse;
    this.#maxBytes = maxBytes;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The parsed template for `source`, parsed now if not cached. */
  get(source: string): T {
    const cached = this.#entries.get(source);
    if (cached !== undefined) {
      // Re-insert to keep the map in least-recently-used order.
      this.#entries.delete(source);
      this.#entries.set(source, cached);
      return cached;
    }
    const parsed = this.#parse(source);
    const cost = costOf(source, parsed);
    if (cost > this.#maxBytes / 4) return parsed;
    this.#bytes += cost;
    this.#entries.set(source, parsed);
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= costOf(oldest, entry);
    }
    return parsed;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}

/**
 * The parsed template's estimate, which counts its source: the cache key is
 * that same string.
 */
function costOf(_source: string, parsed: Sized): number {
  return parsed.size;
}
