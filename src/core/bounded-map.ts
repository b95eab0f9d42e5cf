/**
 * A map that remembers at most about `limit` entries, forgetting the oldest generation when
 * full. Two generations of plain Maps: writes go to the young one; when it holds limit/2
 * entries the old generation is dropped whole and the young one takes its place. Every
 * operation is O(1) (evicting one oldest entry at a time from a large Map is not: V8 walks the
 * holes deleted entries leave behind).
 */
export class BoundedMap<K, V> {
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  readonly #generation: number;

  constructor(limit: number) {
    this.#generation = Math.max(1, Math.floor(limit / 2));
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  has(key: K): boolean {
    return this.#young.has(key) || this.#old.has(key);
  }

  get(key: K): V | undefined {
    return this.#young.has(key) ? this.#young.get(key) : this.#old.get(key);
  }

  set(key: K, value: V): this {
    this.#old.delete(key);
    this.#young.set(key, value);
    if (this.#young.size >= this.#generation) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    return this;
  }

  /** Every entry, the older generation first. */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, value] of this.#old) if (!this.#young.has(key)) yield [key, value];
    yield* this.#young;
  }

  delete(key: K): boolean {
    const young = this.#young.delete(key);
    const old = this.#old.delete(key);
    return young || old;
  }
}
