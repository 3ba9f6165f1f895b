/**
 * Property-based fuzzing of the client-frame parser (src/protocol/messages.ts) with fast-check: whatever a client sends,
 * `parseClientMessage` / `validateClientMessage` never throw, and every result is either a well-formed
 * ClientMessage or an error with a known ErrorCode. Valid messages always parse back to themselves.
 *
 * Runs FUZZ_RUNS cases per property (default 2000); e.g. `FUZZ_RUNS=100000 node scripts/run-tests.mjs fuzz-parser`.
 * A failure prints fast-check's seed and shrunk counterexample; replay with FUZZ_SEED=<seed>.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ClientMessageType,
  ErrorCode,
  MAX_PING_ID_LENGTH,
  assertNever,
  formatResumeQuery,
  parseClientMessage,
  parseResumeQuery,
  parseServerMessage,
  validateClientMessage,
  type ClientMessage,
  type ParseResult,
} from '../../src/protocol/messages.js';

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 2000) || 2000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const ERROR_CODES = new Set<string>(Object.values(ErrorCode));
const CLIENT_TYPES = Object.values(ClientMessageType) as string[];

/** Asserts that `result` is a well-formed parse result; throws (failing the property) otherwise. */
function checkResult(result: ParseResult): void {
  assert.equal(typeof result, 'object');
  if (!result.ok) {
    assert.ok(ERROR_CODES.has(result.error.code), `unknown error code ${String(result.error.code)}`);
    assert.equal(typeof result.error.message, 'string');
    assert.ok(result.error.message.length > 0);
    // The server sends it back in an ERROR frame: it must serialise.
    JSON.parse(JSON.stringify({ type: 'ERROR', data: result.error }));
    return;
  }
  checkMessage(result.message);
}

function checkMessage(message: ClientMessage): void {
  const keys = Object.keys(message);
  switch (message.type) {
    case ClientMessageType.Subscribe:
    case ClientMessageType.Unsubscribe:
      assert.deepEqual(keys.sort(), ['topics', 'type']);
      assert.ok(Array.isArray(message.topics));
      for (const topic of message.topics) assert.equal(typeof topic, 'string');
      return;
    case ClientMessageType.Ping: {
      assert.ok(
        keys.every((k) => k === 'type' || k === 'id'),
        `ping keys ${keys.join()}`,
      );
      const { id } = message;
      assert.ok(
        id === undefined ||
          (typeof id === 'string' && id.length <= MAX_PING_ID_LENGTH) ||
          (typeof id === 'number' && Number.isFinite(id)),
        `ping id ${String(id)}`,
      );
      return;
    }
    case ClientMessageType.Resume:
      assert.deepEqual(keys.sort(), ['topics', 'type']);
      assert.equal(typeof message.topics, 'object');
      assert.ok(message.topics !== null && !Array.isArray(message.topics));
      for (const position of Object.values(message.topics)) {
        assert.deepEqual(Object.keys(position).sort(), ['epoch', 'seq']);
        assert.equal(typeof position.epoch, 'string');
        assert.ok(position.epoch.length >= 1 && position.epoch.length <= 64);
        assert.ok(Number.isSafeInteger(position.seq) && position.seq >= 0);
      }
      return;
    case ClientMessageType.Refresh:
      assert.deepEqual(keys.sort(), ['token', 'type']);
      assert.equal(typeof message.token, 'string');
      assert.ok(message.token.length > 0);
      return;
    default:
      assertNever(message);
  }
}

/** Parses without letting an exception escape unnoticed: a throw fails the property with the input. */
function parseChecked(raw: unknown): ParseResult {
  const result = parseClientMessage(raw);
  checkResult(result);
  return result;
}

// --- arbitraries ---------------------------------------------------------------------------------------------

const topicName = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const anyTopicish = fc.oneof(
  topicName,
  fc.string({ maxLength: 80 }),
  fc.constantFrom('__proto__', 'constructor', ''),
);
const position = fc.record({
  epoch: fc.string({ minLength: 1, maxLength: 64 }),
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
});

/** Valid client messages (with the case of `type` varied: matching is case-insensitive). */
const validMessage = fc.oneof(
  fc.record({
    type: fc.constantFrom('subscribe', 'unsubscribe'),
    topics: fc.array(topicName, { maxLength: 8 }),
  }),
  fc.record(
    {
      type: fc.constant('ping'),
      id: fc.oneof(
        fc.string({ maxLength: MAX_PING_ID_LENGTH }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      ),
    },
    { requiredKeys: ['type'] },
  ),
  fc.record({
    type: fc.constant('resume'),
    topics: fc.dictionary(
      topicName.filter((t) => t !== '__proto__'),
      position,
      { maxKeys: 5 },
    ),
  }),
  fc.record({ type: fc.constant('refresh'), token: fc.string({ minLength: 1, maxLength: 200 }) }),
);

/** Almost valid: right keys, wrong or odd values, odd `type` spellings, extra keys. */
const nearValid = fc.record(
  {
    type: fc.oneof(
      fc.mixedCase(fc.constantFrom(...CLIENT_TYPES)),
      fc.constantFrom(...CLIENT_TYPES).map((t) => ` ${t}`),
      fc.string({ maxLength: 100 }),
      fc.constantFrom('SUBSCRIBE', 'Ping', 'toString', '__proto__', 'constructor', 'hasOwnProperty', ''),
      fc.anything({ maxDepth: 1 }),
    ),
    topics: fc.oneof(
      fc.array(anyTopicish, { maxLength: 10 }),
      fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }),
      fc.dictionary(anyTopicish, fc.oneof(position, fc.anything({ maxDepth: 2 })), { maxKeys: 5 }),
      fc.anything({ maxDepth: 2 }),
    ),
    id: fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.double(),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, Number.MAX_VALUE),
      fc.anything({ maxDepth: 1 }),
    ),
    token: fc.oneof(fc.string({ maxLength: 50 }), fc.anything({ maxDepth: 1 })),
    extra: fc.anything({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** A JSON text with one random edit: a character deleted, inserted or replaced, or cut short. */
const mutatedJson = fc
  .tuple(
    validMessage.map((m) => JSON.stringify(m)),
    fc.nat(),
    fc.constantFrom('delete', 'insert', 'replace', 'cut'),
    fc.string({ minLength: 1, maxLength: 3, unit: 'binary' }),
  )
  .map(([text, at, edit, chars]) => {
    const i = text.length === 0 ? 0 : at % text.length;
    switch (edit) {
      case 'delete':
        return text.slice(0, i) + text.slice(i + 1);
      case 'insert':
        return text.slice(0, i) + chars + text.slice(i);
      case 'replace':
        return text.slice(0, i) + chars + text.slice(i + 1);
      case 'cut':
        return text.slice(0, i);
      default:
        return text;
    }
  });

// --- properties ----------------------------------------------------------------------------------------------

describe(`client frame parser fuzz (${RUNS} runs per property)`, () => {
  it('arbitrary strings (any UTF-16, lone surrogates included)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.string({ unit: 'grapheme', maxLength: 300 }),
        ),
        (raw) => {
          parseChecked(raw);
        },
      ),
      params,
    );
  });

  it('any JSON value, as text', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const result = parseChecked(JSON.stringify(value));
        // Only objects can be messages.
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          assert.equal(result.ok, false);
      }),
      params,
    );
  });

  it('near-valid messages, as values and as JSON text', () => {
    fc.assert(
      fc.property(nearValid, (value) => {
        checkResult(validateClientMessage(value));
        let text: string | undefined;
        try {
          text = JSON.stringify(value);
        } catch {
          text = undefined; // BigInt inside: cannot be a frame
        }
        if (text !== undefined) parseChecked(text);
      }),
      params,
    );
  });

  it('one-character mutations of valid frames', () => {
    fc.assert(
      fc.property(mutatedJson, (text) => {
        parseChecked(text);
      }),
      params,
    );
  });

  it('any JS value to validateClientMessage (null prototypes, boxed values, sparse arrays ...)', () => {
    fc.assert(
      fc.property(
        fc.anything({
          maxDepth: 3,
          withNullPrototype: true,
          withBoxedValues: true,
          withSparseArray: true,
          withMap: true,
          withSet: true,
        }),
        (value) => {
          checkResult(validateClientMessage(value));
        },
      ),
      params,
    );
  });

  it('non-string frames (binary, as ws delivers them) are BAD_MESSAGE', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        for (const frame of [Buffer.from(bytes), bytes.buffer, [Buffer.from(bytes)]]) {
          const result = parseChecked(frame);
          assert.equal(result.ok, false);
          if (!result.ok) assert.equal(result.error.code, ErrorCode.BadMessage);
        }
      }),
      { ...params, numRuns: Math.min(RUNS, 500) },
    );
  });

  it('valid messages always parse, to themselves (type lower-cased)', () => {
    fc.assert(
      fc.property(validMessage, fc.boolean(), (message, upper) => {
        const sent = { ...message, type: upper ? message.type.toUpperCase() : message.type };
        const result = parseChecked(JSON.stringify(sent));
        assert.equal(result.ok, true, JSON.stringify(result));
        if (result.ok) assert.deepEqual(result.message, JSON.parse(JSON.stringify(message)));
      }),
      params,
    );
  });

  it('parseResumeQuery never throws and round-trips formatResumeQuery', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (raw) => {
        const result = parseResumeQuery(raw);
        if (result !== null) {
          for (const p of Object.values(result)) assert.ok(Number.isSafeInteger(p.seq) && p.seq >= 0);
        }
      }),
      params,
    );
    const epoch = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
    fc.assert(
      fc.property(
        fc.dictionary(
          topicName.filter((t) => t !== '__proto__'),
          fc.record({ epoch, seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }) }),
          { maxKeys: 5 },
        ),
        (positions) => {
          // JSON-normalised: fast-check also generates null-prototype records.
          assert.deepEqual(
            parseResumeQuery(formatResumeQuery(positions)),
            JSON.parse(JSON.stringify(positions)),
          );
        },
      ),
      params,
    );
  });

  it('parseServerMessage never throws on arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        ),
        (raw) => {
          const result = parseServerMessage(raw);
          assert.ok(result === null || typeof result.type === 'string');
        },
      ),
      params,
    );
  });
});

// --- findings against src/protocol/messages.ts, fixed there; kept as regression tests --------------------------------------

describe('parser findings', () => {
  it('a resume topic named "__proto__" is kept as an own entry, not swallowed into the prototype', () => {
    const result = parseClientMessage('{"type":"resume","topics":{"__proto__":{"epoch":"e","seq":1}}}');
    if (result.ok) {
      assert.equal(result.message.type, ClientMessageType.Resume);
      if (result.message.type === ClientMessageType.Resume) {
        assert.deepEqual(Object.keys(result.message.topics), ['__proto__']);
        assert.equal('epoch' in result.message.topics, false, 'prototype replaced by client data');
      }
    }
    const query = parseResumeQuery('__proto__:e:1');
    assert.ok(query !== null);
    assert.deepEqual(Object.keys(query), ['__proto__']);
  });

  it('error messages stay short whatever the client sent (no echo of a 10 kB topic)', () => {
    const result = parseClientMessage(
      JSON.stringify({ type: 'resume', topics: { ['x'.repeat(10_000)]: 1 } }),
    );
    assert.equal(result.ok, false);
    if (!result.ok)
      assert.ok(result.error.message.length <= 256, `message of ${result.error.message.length} chars`);
  });
});
