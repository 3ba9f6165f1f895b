/**
 * The catalog of built-in topics: the four city topics and the transit and bike-share topics, each a
 * `TopicDefinition` (schema, TTL, display hints). A server serves a built-in topic by naming it; the topic
 * registry (`src/protocol/topic-registry.ts`) compiles their schemas. Pure data: safe in browsers.
 *
 * @module
 */
import type { TopicDefinition } from '../topic-definition.js';
import { ACCIDENTS_TOPIC } from './accidents.js';
import { AIR_QUALITY_TOPIC } from './air-quality.js';
import { BIKES_TOPIC } from './bikes.js';
import { CAMERAS_TOPIC } from './cameras.js';
import { TRANSIT_TOPIC } from './transit.js';
import { WEATHER_TOPIC } from './weather.js';

export { ACCIDENTS_TOPIC, AIR_QUALITY_TOPIC, BIKES_TOPIC, CAMERAS_TOPIC, TRANSIT_TOPIC, WEATHER_TOPIC };

/** Names of the built-in topics. */
export type BuiltinTopicName = 'cameras' | 'weather' | 'accidents' | 'airQuality' | 'transit' | 'bikes';

/** Every built-in topic by name, in catalog order. */
export const BUILTIN_TOPICS: Readonly<Record<BuiltinTopicName, TopicDefinition>> = Object.freeze({
  cameras: CAMERAS_TOPIC,
  weather: WEATHER_TOPIC,
  accidents: ACCIDENTS_TOPIC,
  airQuality: AIR_QUALITY_TOPIC,
  transit: TRANSIT_TOPIC,
  bikes: BIKES_TOPIC,
});

/** The built-in definition named `name`, or `undefined` (own keys only: `__proto__` is no topic). */
export function builtinTopic(name: string): TopicDefinition | undefined {
  return Object.hasOwn(BUILTIN_TOPICS, name) ? BUILTIN_TOPICS[name as BuiltinTopicName] : undefined;
}
