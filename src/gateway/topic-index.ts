/**
 * The subscription index, kept both ways: topic -> members and member -> topics. Empty topics are deleted, so the
 * index never grows with topics nobody listens to, and a broadcast iterates only the topic's members.
 *
 * @module
 */

/** Two-way index of members subscribed to topics. */
export class TopicIndex<M> {
  readonly #members = new Map<string, Set<M>>();
  readonly #topics = new Map<M, Set<string>>();

  /** Adds `member` to `topic`. Returns false when it was already there. */
  add(member: M, topic: string): boolean {
    let members = this.#members.get(topic);
    if (members === undefined) {
      members = new Set();
      this.#members.set(topic, members);
    }
    if (members.has(member)) return false;
    members.add(member);
    let topics = this.#topics.get(member);
    if (topics === undefined) {
      topics = new Set();
      this.#topics.set(member, topics);
    }
    topics.add(topic);
    return true;
  }

  /** Removes `member` from `topic`. Returns false when it was not there. */
  remove(member: M, topic: string): boolean {
    const members = this.#members.get(topic);
    if (members === undefined || !members.delete(member)) return false;
    if (members.size === 0) this.#members.delete(topic);
    const topics = this.#topics.get(member);
    if (topics !== undefined) {
      topics.delete(topic);
      if (topics.size === 0) this.#topics.delete(member);
    }
    return true;
  }

  /** Removes `member` from every topic; returns the topics it was in. */
  removeMember(member: M): string[] {
    const topics = this.#topics.get(member);
    if (topics === undefined) return [];
    const list = [...topics];
    for (const topic of list) this.remove(member, topic);
    return list;
  }

  /** Members of `topic` (live view; do not mutate while iterating the index). */
  membersOf(topic: string): ReadonlySet<M> | undefined {
    return this.#members.get(topic);
  }

  /** Topics `member` is in. */
  topicsOf(member: M): ReadonlySet<string> {
    return this.#topics.get(member) ?? EMPTY;
  }

  has(member: M, topic: string): boolean {
    return this.#members.get(topic)?.has(member) ?? false;
  }

  /** Number of members of `topic`. */
  count(topic: string): number {
    return this.#members.get(topic)?.size ?? 0;
  }

  /** Topics with at least one member. */
  topics(): IterableIterator<string> {
    return this.#members.keys();
  }
}

const EMPTY: ReadonlySet<string> = new Set();
