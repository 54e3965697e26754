/**
 * A small per-container cache of promises: values expire `ttlMs` after they were asked for, a
 * failed load is forgotten at once, concurrent callers of one key share a single load, and the
 * oldest entries go first beyond `maxEntries`. A `ttlMs` of 0 turns caching off.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { readonly value: Promise<V>; readonly expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = this.now();
    const cached = this.entries.get(key);
    if (cached && cached.expiresAt > now) return cached.value;
    if (cached) this.entries.delete(key);
    const value = load();
    if (this.ttlMs <= 0) return value;
    this.entries.set(key, { value, expiresAt: now + this.ttlMs });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }
}
