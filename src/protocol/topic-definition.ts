/**
 * A topic as data: what the topic registry holds for every topic a server serves, built-in or defined in the
 * config file (`topics` section). The four city topics (and the transit and bike-share catalog entries) are
 * definitions of this same shape.
 *
 * `TopicInfo` is the part clients read (`GET /api/topics`, the dashboard); `TopicDefinition` adds what only the
 * server uses (the entity schema, the TTL, the alert rules).
 *
 * @module
 */

/** A JSON Schema (draft 2020-12 subset that ajv checks) describing one entity of a topic. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** One entity field the dashboard shows in a topic's list and popups. */
export interface DisplayField {
  /** Dotted path in the entity (`bikesAvailable`, `location.lat`). */
  readonly field: string;
  /** Column heading; default: the field name. */
  readonly label?: string;
  /** Unit shown after the value (`km/h`, `°C`). */
  readonly unit?: string;
}

/** How the dashboard draws a topic (hints: a client may ignore them). */
export interface TopicDisplay {
  /** Human name of the topic (`Transit vehicles`). */
  readonly label: string;
  /** CSS colour of the topic's markers and badges (`#2f80ed`). */
  readonly color: string;
  /** A short glyph or emoji drawn in markers and headings. */
  readonly icon?: string;
  /** Fields listed per entity, in order (at most 8). */
  readonly fields: readonly DisplayField[];
}

/** What clients may know of a topic (`GET /api/topics` answers these, in registry order). */
export interface TopicInfo {
  /** Topic name (the `topic` of frames); matches `TOPIC_NAME_PATTERN`. */
  readonly name: string;
  /** Field of a reported record that becomes the entity's `id` when the record has no `id` (default `id`). */
  readonly idField: string;
  /** Dotted path of the entity's `{lat, lon}` position, or `null` for topics without one (no map layer). */
  readonly locationField: string | null;
  readonly display: TopicDisplay;
}

/** Comparison of a threshold alert rule. */
export type ThresholdOperator = '>' | '>=' | '<' | '<=' | '==' | '!=';

/**
 * A config-defined alert rule of a topic: an entity whose `field` compares true with `value` raises an alert
 * (`id` = `<rule>:<topic>:<entity id>`); it is resolved when the comparison turns false (or the entity is removed).
 */
export interface ThresholdRule {
  /** Rule name, unique within the topic (the `rule` of its alerts). */
  readonly name: string;
  /** Dotted path of the compared field. */
  readonly field: string;
  readonly op: ThresholdOperator;
  readonly value: number | string | boolean;
  readonly severity: 'info' | 'warning' | 'critical';
  /** Message template; `{field.path}` is replaced by the entity's value (`{id}`, `{name}`...). */
  readonly message: string;
}

/** Everything the registry knows of a topic. */
export interface TopicDefinition extends TopicInfo {
  /** JSON Schema of one entity (the base fields `id`, `updatedAt`, `source` are always required on top). */
  readonly schema: JsonSchema;
  /** Time-to-live (ms) of an entity no source reports any more; `0` keeps entities until removed. */
  readonly ttlMs: number;
  /** Config-defined alert rules (the built-in rules of the city topics are configured in `alerts`). */
  readonly alerts: readonly ThresholdRule[];
}
