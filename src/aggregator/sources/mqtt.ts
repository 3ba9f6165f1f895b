/**
 * The `mqtt` source: subscribes to an MQTT broker with one or more topic filters per city topic and turns JSON
 * payloads into readings. A payload may be
 * - one entity (`id` defaults to the last level of the MQTT topic, so `city/cameras/cam-7` needs no `id`),
 * - an array of entities, or
 * - `{ "upserts": [...], "removes": [...] }`;
 * an empty payload (the usual way to clear a retained message) removes the entity named by the last topic level.
 * Payloads that are not JSON, or outside the JSON bounds (`src/protocol/json-bounds.ts`: too deep, too large), are counted
 * as rejected readings and logged; nothing of them is stored.
 *
 * The client reconnects on its own every `reconnectPeriodMs` and subscribes again on every connect; lost
 * connections and broker errors show in the source status. `stop()` ends the client (forced), which clears its
 * reconnect and keep-alive timers and closes the socket.
 *
 * States: `idle` -> `connecting` -> `connected` <-> `reconnecting` -> `stopped`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { isRecord } from '../../shared/json.js';
import { checkJsonBounds } from '../../protocol/json-bounds.js';
import type { Source, SourceContext } from '../source.js';

/** Options of {@link createMqttSource}. */
export interface MqttSourceOptions {
  /** Source name (unique; `Entity.source`). */
  readonly name: string;
  /** Broker URL: `mqtt://`, `mqtts://`, `ws://` or `wss://`. */
  readonly url: string;
  /** City topic -> MQTT topic filter(s), e.g. `{ "cameras": "city/cameras/+" }`. */
  readonly topics: Readonly<Record<string, string | readonly string[]>>;
  /** Default: `citypulse-<name>-<random>`. */
  readonly clientId?: string;
  readonly username?: string;
  readonly password?: string;
  /** Subscription QoS. Default 0. */
  readonly qos?: 0 | 1;
  /** Delay between reconnect attempts (ms). Default 5000. */
  readonly reconnectPeriodMs?: number;
  /** Time allowed for a connection to be acknowledged (ms). Default 10000. */
  readonly connectTimeoutMs?: number;
  /** Payloads larger than this are rejected (bytes). Default 256 KiB. */
  readonly maxPayloadBytes?: number;
}

type MqttState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopped';

/**
 * Whether an MQTT topic name matches a filter (`+` one level, `#` the rest). Topics starting with `$` only match
 * filters that start with the same literal level (MQTT 3.1.1 section 4.7.2).
 */
export function mqttTopicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

class MqttSource implements Source {
  readonly kind = 'mqtt';
  readonly topics: readonly string[];
  private readonly filters: { readonly filter: string; readonly topic: string }[];
  private state: MqttState = 'idle';
  private client: MqttClient | null = null;

  constructor(private readonly options: MqttSourceOptions) {
    this.topics = Object.keys(options.topics);
    this.filters = Object.entries(options.topics).flatMap(([topic, filters]) =>
      (typeof filters === 'string' ? [filters] : filters).map((filter) => ({ filter, topic })),
    );
  }

  get name(): string {
    return this.options.name;
  }

  start(context: SourceContext): void {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    const client = connect(this.options.url, {
      clientId: this.options.clientId ?? `citypulse-${this.options.name}-${randomBytes(4).toString('hex')}`,
      ...(this.options.username === undefined ? {} : { username: this.options.username }),
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      reconnectPeriod: this.options.reconnectPeriodMs ?? 5000,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      clean: true,
      resubscribe: false,
      queueQoSZero: false,
    });
    this.client = client;
    client.on('connect', () => {
      if (this.state === 'stopped') return;
      this.state = 'connected';
      const filters = Object.fromEntries(this.filters.map((f) => [f.filter, { qos: this.options.qos ?? 0 }]));
      client.subscribe(filters, (error) => {
        if (error !== null && error !== undefined)
          context.reportError(new Error(`subscribe failed: ${error.message}`));
        else if (this.state === 'connected') context.reportSuccess();
      });
    });
    client.on('message', (mqttTopic, payload) => {
      if (this.state === 'stopped') return;
      this.handleMessage(context, mqttTopic, payload);
    });
    client.on('error', (error) => {
      if (this.state === 'stopped') return;
      context.reportError(new Error(`mqtt: ${error.message}`));
    });
    client.on('close', () => {
      if (this.state === 'stopped' || this.state === 'reconnecting') return;
      const wasConnected = this.state === 'connected';
      this.state = 'reconnecting';
      context.reportError(
        new Error(wasConnected ? 'connection to the broker lost' : 'cannot connect to the broker'),
      );
    });
    client.on('reconnect', () => {
      if (this.state !== 'stopped') this.state = 'reconnecting';
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const client = this.client;
    this.client = null;
    if (client !== null) await client.endAsync(true);
  }

  private handleMessage(context: SourceContext, mqttTopic: string, payload: Buffer): void {
    const match = this.filters.find((f) => mqttTopicMatches(f.filter, mqttTopic));
    if (match === undefined) return;
    const lastLevel = mqttTopic.slice(mqttTopic.lastIndexOf('/') + 1);
    if (payload.length === 0) {
      if (lastLevel !== '') context.emit({ topic: match.topic, removes: [lastLevel] });
      return;
    }
    if (payload.length > (this.options.maxPayloadBytes ?? 256 * 1024)) {
      context.reject(`payload on ${mqttTopic} exceeds ${this.options.maxPayloadBytes ?? 256 * 1024} bytes`);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch {
      context.reject(`payload on ${mqttTopic} is not JSON`);
      return;
    }
    const violation = checkJsonBounds(value);
    if (violation !== null) {
      context.reject(`payload on ${mqttTopic} refused (${violation.code}): ${violation.message}`);
      return;
    }
    const withId = (entity: unknown): unknown =>
      isRecord(entity) && entity.id === undefined && lastLevel !== '' ? { ...entity, id: lastLevel } : entity;
    if (Array.isArray(value)) {
      context.emit({ topic: match.topic, upserts: value });
    } else if (isRecord(value) && (Array.isArray(value.upserts) || Array.isArray(value.removes))) {
      const removes = Array.isArray(value.removes)
        ? value.removes.filter((id): id is string => typeof id === 'string')
        : [];
      context.emit({
        topic: match.topic,
        upserts: Array.isArray(value.upserts) ? value.upserts : [],
        removes,
      });
    } else {
      context.emit({ topic: match.topic, upserts: [withId(value)] });
    }
  }
}

/** Creates an `mqtt` source. `start` begins connecting and returns at once. */
export function createMqttSource(options: MqttSourceOptions): Source {
  return new MqttSource(options);
}
