/** @module A promise cache bounded by bytes and entries, least recently used out first (BM25 indexes and postings, p90 arrays). */

/**
 * Loads each key once (concurrent gets share the load), keeps the value while the estimated bytes and the entry count
 * stay within bounds; a failed load is forgotten, so the next get tries again.
 */
export class BoundedCache<T> {
  private readonly entries = new Map<string, { value: Promise<T>; bytes: number }>()
  private total = 0
  constructor(
    private readonly maxBytes: number,
    private readonly maxEntries: number
  ) {}
  get(key: string, load: () => Promise<T>, size: (v: T) => number): Promise<T> {
    const hit = this.entries.get(key)
    if (hit) {
      this.entries.delete(key)
      this.entries.set(key, hit)
      return hit.value
    }
    const entry = { value: load(), bytes: 0 }
    this.entries.set(key, entry)
    entry.value.then(
      v => {
        if (this.entries.get(key) !== entry) return
        entry.bytes = size(v)
        this.total += entry.bytes
        this.evict(key)
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key)
      }
    )
    return entry.value
  }
  private evict(keep: string): void {
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxBytes && this.entries.size <= this.maxEntries) return
      if (k === keep) continue
      this.entries.delete(k)
      this.total -= e.bytes
    }
  }
}
