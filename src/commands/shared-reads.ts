/**
 * Concurrent reads of the same thing, shared. A caller joins a read that has not started yet,
 * never one already under way (that one may have missed a write the caller made or saw just
 * before asking), so what it gets is at least as new as its question. A burst of N callers costs
 * at most two reads at a time instead of N.
 */
export class SharedReads<V> {
  readonly #entries = new Map<string, { running?: Promise<V>; waiting?: Promise<V> }>();

  read(key: string, load: () => Promise<V>): Promise<V> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {};
      this.#entries.set(key, entry);
    }
    const { running } = entry;
    if (!running) return this.#start(key, entry, load);
    const current = entry;
    current.waiting ??= running
      .catch(() => {})
      .then(() => {
        current.waiting = undefined;
        return this.#start(key, current, load);
      });
    return current.waiting;
  }

  /** Keys with a read running or waiting. */
  get size(): number {
    return this.#entries.size;
  }

  #start(key: string, entry: { running?: Promise<V>; waiting?: Promise<V> }, load: () => Promise<V>) {
    const running: Promise<V> = Promise.resolve()
      .then(load)
      .finally(() => {
        if (entry.running !== running) return;
        entry.running = undefined;
        if (!entry.waiting && this.#entries.get(key) === entry) this.#entries.delete(key);
      });
    entry.running = running;
    return running;
  }
}
