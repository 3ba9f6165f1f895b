/**
 * citypulse: a real-time gateway for live city data.
 *
 * @module
 */
export * from './protocol/index.js';
export * from './protocol/topics.js';
export {
  GENERIC_TTL_MS,
  MAX_SCHEMA_PATTERN_LENGTH,
  TopicRegistry,
  TopicRegistryError,
  createTopicRegistry,
  defaultTopicRegistry,
  genericTopicDefinition,
  resolveTopicRegistry,
} from './protocol/topic-registry.js';
export type { TopicsInput } from './protocol/topic-registry.js';
export { WebSocketService } from './gateway/websocket-service.js';
export type {
  WebSocketServiceOptions,
  ServiceCounters,
  SnapshotProvider,
  ChangeListener,
  StateEvent,
} from './gateway/websocket-service.js';
export { createServer } from './app/create-server.js';
export type { CityPulseServer, CityPulseServerOptions } from './app/create-server.js';
export { createLogger, silentLogger } from './shared/logger.js';
export type { Logger, LogLevel } from './shared/logger.js';
export { DataAggregator } from './aggregator/data-aggregator.js';
export type {
  DataAggregatorOptions,
  TopicPublisher,
  IngestResult,
  PublishUpdateResult,
} from './aggregator/data-aggregator.js';
export { createSimulator } from './aggregator/simulator.js';
export type { Source, SourceBatch, SourceContext, SourceStatus } from './aggregator/source.js';
export {
  ConfigError,
  aggregatorOptionsFromConfig,
  createSourcesFromConfig,
  loadConfig,
  sourceFactoriesFromConfig,
  validateConfig,
} from './aggregator/config.js';
export type { CityPulseConfig, SourceConfig } from './aggregator/config.js';
export { createHttpPollSource } from './aggregator/sources/http-poll.js';
export { createMqttSource } from './aggregator/sources/mqtt.js';
export { PARSER_FORMATS, createParser } from './aggregator/parsers/index.js';
export { applyFrame, fromSnapshot, toTopicState } from './aggregator/fold.js';
export { createAuthenticator } from './security/auth.js';
export type { AuthenticatorOptions, Principal } from './security/auth.js';
export { createMetrics } from './gateway/metrics.js';
export type { Metrics } from './gateway/metrics.js';
