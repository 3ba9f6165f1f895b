/**
 * The protocol layer as one entry point (`citypulse/protocol`): the wire protocol of `messages.ts` (message types,
 * validation, error and close codes, and the JSON bounds it re-exports), the state model (`state-model.ts`: entity
 * identity, per-topic validity, the one rule of how an UPDATE changes a topic's state; `alert-state.ts`: how an
 * ALERT changes its active alerts) and the typed payloads with the one envelope encoder (`payloads.ts`), and the
 * catalog of built-in topic definitions (`catalog/`, pure data). The entity types stay in `topics.ts`. The topic
 * registry (`topic-registry.ts`, which compiles schemas with ajv) is Node-only and exported by the package root, not
 * here: this entry point stays free of dependencies.
 *
 * @module
 */
export * from './messages.js';
export * from './state-model.js';
export * from './alert-state.js';
export * from './payloads.js';
export type * from './topic-definition.js';
export * from './catalog/index.js';
