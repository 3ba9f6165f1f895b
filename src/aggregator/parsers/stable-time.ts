/**
 * `updatedAt` for feeds whose records carry no time of their own (a GTFS-Realtime vehicle without a timestamp, a
 * GBFS station without `last_reported`): the time the record last changed, so an unchanged record stays equal to
 * the stored entity and the aggregator publishes nothing for it (stamping "now" would republish every record on
 * every poll). Keeps one entry per id of the latest batch only.
 *
 * @module
 */

/** Remembers, per entity id, the record's content and the time it was first seen with it. */
export class ChangeStamps {
  #previous = new Map<string, { readonly key: string; readonly at: string }>();

  /**
   * Sets `updatedAt` on every entity without one: the time its content (every other field) was first seen, or
   * `now` for a new or changed one. Forgets ids not in `entities`.
   */
  stamp(entities: readonly Record<string, unknown>[], now: number): void {
    const next = new Map<string, { key: string; at: string }>();
    const nowIso = new Date(now).toISOString();
    for (const entity of entities) {
      if (entity.updatedAt !== undefined || typeof entity.id !== 'string') continue;
      const key = JSON.stringify(entity);
      const before = this.#previous.get(entity.id);
      const at = before !== undefined && before.key === key ? before.at : nowIso;
      next.set(entity.id, { key, at });
      entity.updatedAt = at;
    }
    this.#previous = next;
  }
}
