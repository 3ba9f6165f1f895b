/**
 * Test seams for the aggregator tests: a recording publisher (our own `TopicPublisher` interface), a manual
 * clock and a source driven by the test.
 */
import type { StreamPosition, WebSocketMessage } from '../../src/protocol/messages.js';
import { DataAggregator, type TopicPublisher } from '../../src/aggregator/data-aggregator.js';
import type { Source, SourceBatch, SourceContext } from '../../src/aggregator/source.js';

/** One message the publisher received, with the position it handed back. */
export interface Published {
  readonly topic: string;
  readonly message: WebSocketMessage;
  readonly position: StreamPosition;
}

/** A `TopicPublisher` that numbers messages per topic like the WebSocket service and keeps them all. */
export class RecordingPublisher implements TopicPublisher {
  readonly messages: Published[] = [];
  private readonly seqs = new Map<string, number>();

  constructor(readonly epoch = 'test-epoch') {}

  publish(topic: string, message: WebSocketMessage): StreamPosition {
    const seq = (this.seqs.get(topic) ?? 0) + 1;
    this.seqs.set(topic, seq);
    const position = { epoch: this.epoch, seq };
    this.messages.push({ topic, message: structuredClone(message), position });
    return position;
  }

  of(topic: string, type?: 'UPDATE' | 'ALERT'): Published[] {
    return this.messages.filter((m) => m.topic === topic && (type === undefined || m.message.type === type));
  }
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public ms = Date.parse('2026-03-01T12:00:00.000Z')) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A source that does nothing by itself: the test calls `emit` / `fail` once it has started. */
export class PushSource implements Source {
  readonly kind = 'push';
  context: SourceContext | null = null;
  stopped = 0;

  constructor(
    readonly name: string,
    readonly topics: readonly string[],
  ) {}

  start(context: SourceContext): void {
    this.context = context;
  }

  async stop(): Promise<void> {
    this.stopped += 1;
  }

  emit(batch: SourceBatch): void {
    if (this.context === null) throw new Error(`source ${this.name} not started`);
    this.context.emit(batch);
  }

  fail(error: unknown): void {
    if (this.context === null) throw new Error(`source ${this.name} not started`);
    this.context.reportError(error);
  }
}

/** A valid camera with overrides. */
export function camera(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: `Camera ${id}`,
    location: { lat: 52.37, lon: 4.89 },
    status: 'online',
    updatedAt: '2026-03-01T12:00:00.000Z',
    ...overrides,
  };
}

/** A valid accident with overrides. */
export function accident(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    location: { lat: 52.36, lon: 4.9 },
    severity: 2,
    description: 'Collision',
    kind: 'collision',
    roadName: 'A10',
    reportedAt: '2026-03-01T11:59:00.000Z',
    updatedAt: '2026-03-01T12:00:00.000Z',
    ...overrides,
  };
}

/** A valid air-quality station with overrides (category derived from aqi when not given). */
export function station(
  id: string,
  aqi: number,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    name: `Station ${id}`,
    location: { lat: 52.36, lon: 4.87 },
    aqi,
    updatedAt: '2026-03-01T12:00:00.000Z',
    ...overrides,
  };
}

/**
 * A started aggregator over `sources` (serving `topics` and `cameras`) plus a {@link PushSource} on `cameras`,
 * attached to a {@link RecordingPublisher}; stopped after the test. For feed tests that check "another topic keeps
 * flowing".
 */
export async function startFeedAggregator(
  t: { after: (fn: () => Promise<void>) => void },
  sources: readonly Source[],
  topics: readonly string[],
  alerts = true,
): Promise<{ aggregator: DataAggregator; publisher: RecordingPublisher; push: PushSource }> {
  const push = new PushSource('other', ['cameras']);
  const aggregator = new DataAggregator({
    topics: [...topics, 'cameras'],
    sources: [...sources, push],
    now: new ManualClock().now,
    ...(alerts ? {} : { alerts: false }),
  });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(() => aggregator.stop());
  await aggregator.start();
  return { aggregator, publisher, push };
}
