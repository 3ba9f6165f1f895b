/**
 * A minimal typed event emitter: `on` returns the function that removes the listener. A listener that throws
 * does not stop the others; the error goes to `onListenerError`.
 *
 * @module
 */

/** A listener of event payload `T`. */
export type Listener<T> = (payload: T) => void;

/** Typed emitter over an event map `{ name: payload }`. */
export class Emitter<TEvents extends object> {
  readonly #listeners = new Map<keyof TEvents, Set<Listener<never>>>();
  readonly #onListenerError: (error: unknown, event: keyof TEvents) => void;

  constructor(onListenerError: (error: unknown, event: keyof TEvents) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds `listener` for `event`; returns the function that removes it (idempotent). */
  on<K extends keyof TEvents>(event: K, listener: Listener<TEvents[K]>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    // Wrap so the same function added twice gets two independent registrations.
    const entry: Listener<TEvents[K]> = (payload) => listener(payload);
    set.add(entry as Listener<never>);
    return () => {
      set.delete(entry as Listener<never>);
    };
  }

  /** Whether `event` has listeners. */
  has(event: keyof TEvents): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  /** Calls every listener of `event` with `payload`, in the order they were added. */
  emit<K extends keyof TEvents>(event: K, payload: TEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set] as Listener<TEvents[K]>[]) {
      try {
        listener(payload);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
  }

  /** Removes every listener. */
  clear(): void {
    this.#listeners.clear();
  }
}
