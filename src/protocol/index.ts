/**
 * The protocol layer as one entry point (`citypulse/protocol`): the wire protocol of `messages.ts` (message types,
 * validation, error and close codes, and the JSON bounds it re-exports). The entity model stays in `topics.ts`.
 *
 * @module
 */
export * from './messages.js';
