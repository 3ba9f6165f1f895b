/**
 * The coalescing scheduler on its own, over a recording transport (our own seam: the real-socket behaviour is in
 * delivery.test.ts and transport.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutboundScheduler, Outbox } from '../../src/gateway/outbound.js';
import type { Transport } from '../../src/gateway/transport.js';

class RecordingTransport implements Transport {
  readonly writes: Buffer[] = [];
  isOpen = true;
  bufferedBytes = 0;
  #drain: (() => void) | null = null;
  write(data: Buffer): void {
    this.writes.push(data);
  }
  onceDrained(listener: () => void): void {
    this.#drain = listener;
  }
  drain(): void {
    this.bufferedBytes = 0;
    const listener = this.#drain;
    this.#drain = null;
    listener?.();
  }
  ping(): void {}
  close(): void {}
  terminate(): void {}
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('frames due to a client in one turn leave in one write; clients due the same frames share one buffer', async () => {
  const scheduler = new OutboundScheduler({ onOverflow: () => assert.fail('no overflow expected') });
  const a = new Outbox(new RecordingTransport());
  const b = new Outbox(new RecordingTransport());
  const c = new Outbox(new RecordingTransport());
  const f1 = Buffer.from('one');
  const f2 = Buffer.from('two');
  const own = Buffer.from('pong-for-c');
  for (const outbox of [a, b, c]) scheduler.enqueue(outbox, f1);
  scheduler.enqueue(c, own);
  for (const outbox of [a, b, c]) scheduler.enqueue(outbox, f2);
  await turn();
  const [wa, wb, wc] = [a, b, c].map((o) => (o.transport as RecordingTransport).writes);
  assert.equal(wa?.length, 1);
  assert.equal(wb?.length, 1);
  assert.equal(wc?.length, 1);
  assert.equal(wa?.[0]?.toString(), 'onetwo');
  assert.equal(wa?.[0], wb?.[0], 'a and b share the very same joined buffer');
  assert.equal(wc?.[0]?.toString(), 'onepong-for-ctwo', 'c gets its own frames in order');
  assert.notEqual(wc?.[0], wa?.[0]);
  assert.equal(scheduler.writes, 3);
  assert.equal(scheduler.framesWritten, 7);
});

test('a client behind its high-water mark waits for drain, then gets everything in order', async () => {
  let backlogs = 0;
  let drained = 0;
  const scheduler = new OutboundScheduler({
    highWaterBytes: 10,
    backlogBytes: 8,
    onOverflow: () => assert.fail('no overflow expected'),
    onBacklog: () => backlogs++,
    onDrained: () => drained++,
  });
  const transport = new RecordingTransport();
  const outbox = new Outbox(transport);
  scheduler.enqueue(outbox, Buffer.from('aaaa'));
  await turn();
  transport.bufferedBytes = 100;
  scheduler.enqueue(outbox, Buffer.from('bbbb'));
  await turn();
  assert.equal(transport.writes.length, 1, 'nothing written while behind');
  scheduler.enqueue(outbox, Buffer.from('cccc'));
  scheduler.enqueue(outbox, Buffer.from('dddd'));
  assert.equal(backlogs, 1, 'the backlog handler ran once the queue passed backlogBytes');
  transport.drain();
  await turn();
  assert.equal(drained, 1);
  assert.deepEqual(
    transport.writes.map((w) => w.toString()),
    ['aaaa', 'bbbbccccdddd'],
  );
});

test('passing maxQueuedBytes reports overflow; a discarded outbox takes no more frames', async () => {
  const overflowed: Outbox[] = [];
  const scheduler = new OutboundScheduler({ maxQueuedBytes: 10, onOverflow: (o) => overflowed.push(o) });
  const transport = new RecordingTransport();
  const outbox = new Outbox(transport);
  scheduler.enqueue(outbox, Buffer.alloc(6));
  scheduler.enqueue(outbox, Buffer.alloc(6));
  assert.deepEqual(overflowed, [outbox]);
  scheduler.discard(outbox);
  scheduler.enqueue(outbox, Buffer.alloc(1));
  await turn();
  assert.equal(transport.writes.length, 0);
});
