/**
 * The one envelope encoder (fixed key order, absent fields left out, `recovered` re-encoded rather than spliced) and
 * the typed reading of ALERT data the SDK and the dashboard use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeEnvelope, markRecovered, readAlert } from '../../src/protocol/payloads.js';

test('encodeEnvelope: fixed key order, absent fields left out', () => {
  const cases: Array<[Parameters<typeof encodeEnvelope>[0], string]> = [
    [{ type: 'PONG', data: { id: 1 }, timestamp: 't' }, '{"type":"PONG","data":{"id":1},"timestamp":"t"}'],
    [
      { epoch: 'e', seq: 3, timestamp: 't', data: [], topic: 'w', type: 'UPDATE' },
      '{"type":"UPDATE","topic":"w","data":[],"timestamp":"t","seq":3,"epoch":"e"}',
    ],
    [
      { type: 'SNAPSHOT', topic: 'w', data: {}, timestamp: 't', seq: 0, recovered: false },
      '{"type":"SNAPSHOT","topic":"w","data":{},"timestamp":"t","seq":0,"recovered":false}',
    ],
  ];
  for (const [envelope, json] of cases) assert.equal(encodeEnvelope(envelope), json);
});

test('markRecovered equals encoding the frame with recovered set, for any data (no splicing)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat(), fc.boolean(), (data, seq, recovered) => {
      const frame = { type: 'UPDATE', topic: 'w', data, timestamp: 't', seq, epoch: 'e' };
      const json = encodeEnvelope(frame);
      assert.equal(markRecovered(json, recovered), encodeEnvelope({ ...frame, recovered }));
      assert.deepEqual(
        JSON.parse(markRecovered(json, recovered)),
        JSON.parse(JSON.stringify({ ...frame, recovered })),
      );
    }),
    { numRuns: 200 },
  );
});

test('readAlert: rule alerts, published alerts, strings and other JSON get one typed view', () => {
  const rule = {
    id: 'r1',
    rule: 'accident-severity',
    severity: 'critical',
    topic: 'accidents',
    entityId: 'a',
    message: 'closed',
    raisedAt: '2026-03-01T12:00:00.000Z',
    state: 'resolved',
  };
  assert.deepEqual(readAlert(rule, 'x'), {
    id: 'r1',
    severity: 'critical',
    message: 'closed',
    topic: 'accidents',
    state: 'resolved',
    raisedAt: '2026-03-01T12:00:00.000Z',
    rule: 'accident-severity',
  });
  const cases: Array<[unknown, string, string]> = [
    [{ message: 'A10 closed' }, 'A10 closed', 'warning'],
    [{ title: 'storm', severity: 'info' }, 'storm', 'info'],
    [{ message: 'm', severity: 'apocalyptic' }, 'm', 'warning'],
    ['plain text', 'plain text', 'warning'],
    [{ n: 1 }, '{"n":1}', 'warning'],
    [null, 'null', 'warning'],
  ];
  for (const [data, message, severity] of cases) {
    const view = readAlert(data, 'weather');
    assert.equal(view.message, message, JSON.stringify(data));
    assert.equal(view.severity, severity, JSON.stringify(data));
    assert.equal(view.topic, 'weather');
    assert.equal(view.state, 'raised');
  }
});
