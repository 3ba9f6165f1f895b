/**
 * citypulse: a real-time gateway for live city data.
 *
 * @module
 */
export * from './protocol.js';
export * from './topics.js';
export { WebSocketService } from './server/websocket-service.js';
export type {
  WebSocketServiceOptions,
  ServiceCounters,
  SnapshotProvider,
} from './server/websocket-service.js';
export { createServer } from './server/create-server.js';
export type { CityPulseServer, CityPulseServerOptions } from './server/create-server.js';
export { createLogger, silentLogger } from './server/logger.js';
export type { Logger, LogLevel } from './server/logger.js';
export { DataAggregator } from './aggregator/data-aggregator.js';
export type { DataAggregatorOptions, TopicPublisher, IngestResult } from './aggregator/data-aggregator.js';
export { createSimulator } from './aggregator/simulator.js';
export type { Source, SourceBatch, SourceContext, SourceStatus } from './aggregator/source.js';
