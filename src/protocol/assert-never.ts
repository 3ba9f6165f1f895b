/**
 * The end of every exhaustive `switch` over a union: the compiler proves the `default` branch unreachable, and the
 * `@typescript-eslint/switch-exhaustiveness-check` lint rule makes every case explicit. Re-exported by `messages.ts`.
 *
 * @module
 */

/** Called in the `default` branch of an exhaustive `switch`; the compiler proves it unreachable. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}
