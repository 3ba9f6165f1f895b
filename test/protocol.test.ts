import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CloseCode,
  ErrorCode,
  formatResumeQuery,
  isRetryableClose,
  parseClientMessage,
  parseResumeQuery,
  parseServerMessage,
} from '../src/protocol/messages.js';

const VALID: [string, unknown][] = [
  ['{"type":"subscribe","topics":["weather"]}', { type: 'subscribe', topics: ['weather'] }],
  ['{"type":"SUBSCRIBE","topics":[]}', { type: 'subscribe', topics: [] }],
  ['{"type":"Unsubscribe","topics":["a","b"]}', { type: 'unsubscribe', topics: ['a', 'b'] }],
  ['{"type":"ping"}', { type: 'ping' }],
  ['{"type":"ping","id":"abc"}', { type: 'ping', id: 'abc' }],
  ['{"type":"ping","id":42}', { type: 'ping', id: 42 }],
  [
    '{"type":"resume","topics":{"weather":{"epoch":"e1","seq":5}}}',
    { type: 'resume', topics: { weather: { epoch: 'e1', seq: 5 } } },
  ],
  ['{"type":"refresh","token":"t.o.k"}', { type: 'refresh', token: 't.o.k' }],
  ['{"type":"subscribe","topics":["weather"],"extra":true}', { type: 'subscribe', topics: ['weather'] }],
];

const INVALID: [unknown, ErrorCode][] = [
  ['', ErrorCode.BadJson],
  ['{', ErrorCode.BadJson],
  ['undefined', ErrorCode.BadJson],
  ['1', ErrorCode.BadMessage],
  ['[]', ErrorCode.BadMessage],
  ['null', ErrorCode.BadMessage],
  ['{}', ErrorCode.BadMessage],
  ['{"type":null}', ErrorCode.BadMessage],
  ['{"type":"subscribe"}', ErrorCode.BadMessage],
  ['{"type":"subscribe","topics":[null]}', ErrorCode.BadMessage],
  ['{"type":"ping","id":true}', ErrorCode.BadMessage],
  [`{"type":"ping","id":"${'x'.repeat(200)}"}`, ErrorCode.BadMessage],
  ['{"type":"resume","topics":[]}', ErrorCode.BadMessage],
  ['{"type":"resume","topics":{"w":{"epoch":"","seq":1}}}', ErrorCode.BadMessage],
  ['{"type":"resume","topics":{"w":{"epoch":"e","seq":1.5}}}', ErrorCode.BadMessage],
  ['{"type":"refresh","token":""}', ErrorCode.BadMessage],
  ['{"type":"hello"}', ErrorCode.UnknownType],
  [Buffer.from('{"type":"ping"}'), ErrorCode.BadMessage],
  [42, ErrorCode.BadMessage],
];

test('parseClientMessage accepts every valid message form', () => {
  for (const [raw, expected] of VALID) {
    const result = parseClientMessage(raw);
    assert.ok(result.ok, raw);
    assert.deepEqual(result.message, expected, raw);
  }
});

test('parseClientMessage rejects invalid frames with the right code', () => {
  for (const [raw, code] of INVALID) {
    const result = parseClientMessage(raw);
    assert.ok(!result.ok, String(raw));
    assert.equal(result.error.code, code, String(raw));
  }
});

test('resume query round-trips and rejects malformed items', () => {
  const positions = { weather: { epoch: 'abc', seq: 10 }, 'air:quality': { epoch: 'e2', seq: 0 } };
  assert.deepEqual(parseResumeQuery(formatResumeQuery(positions)), positions);
  for (const bad of [
    'weather',
    'weather:abc',
    'weather::1',
    ':e:1',
    'weather:e:-1',
    'weather:e:x',
    'weather:e:',
  ]) {
    assert.equal(parseResumeQuery(bad), null, bad);
  }
});

test('close codes: normal, policy, too-big and forbidden are final; the rest retry', () => {
  assert.equal(isRetryableClose(CloseCode.Normal), false);
  assert.equal(isRetryableClose(CloseCode.PolicyViolation), false);
  assert.equal(isRetryableClose(CloseCode.MessageTooBig), false);
  assert.equal(isRetryableClose(CloseCode.Forbidden), false);
  for (const code of [
    CloseCode.GoingAway,
    CloseCode.InternalError,
    CloseCode.TokenExpired,
    CloseCode.RateLimited,
    CloseCode.SlowConsumer,
    1006,
  ]) {
    assert.equal(isRetryableClose(code), true, String(code));
  }
});

test('parseServerMessage accepts server frames and rejects others', () => {
  assert.ok(
    parseServerMessage('{"type":"UPDATE","topic":"w","data":1,"timestamp":"2026-01-01T00:00:00Z","seq":1}'),
  );
  assert.equal(parseServerMessage('{"type":"NOPE","data":1,"timestamp":"x"}'), null);
  assert.equal(parseServerMessage('{"type":"UPDATE","data":1}'), null);
  assert.equal(parseServerMessage('{"type":"UPDATE","data":1,"timestamp":"x","seq":"1"}'), null);
  assert.equal(parseServerMessage('nope'), null);
});
