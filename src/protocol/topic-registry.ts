/**
 * The topic registry: every topic a server serves, as data (`TopicDefinition`), with each topic's entity schema
 * compiled once (ajv, JSON Schema draft 2020-12) into the topic's validator. The one place that answers "is this a
 * valid entity of topic T?" for every server path: the aggregator (sources, `POST /api/ingest`), the library's
 * `publish`, `POST /api/publish`, and the Redis broker's publish path.
 *
 * A topic's validator is the state model's base rule (`validateBase`: JSON bounds, `id`, `updatedAt`, `source`),
 * then the topic's schema; a refusal names the first bad field as a dotted path (`location.lat`). Schemas are
 * input (the config file's `topics` section): strict mode, no `$ref` outside the schema itself, no `$id`, at most
 * {@link MAX_SCHEMA_PATTERNS} patterns of at most {@link MAX_SCHEMA_PATTERN_LENGTH} characters, each proven free of
 * catastrophic backtracking (`pattern-safety.ts`), and the whole schema within the JSON bounds.
 *
 * Node only (ajv generates code): the client SDK folds with the base rule and never imports this module.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import { BUILTIN_TOPICS, builtinTopic, type BuiltinTopicName } from './catalog/index.js';
import { checkJsonBounds } from './json-bounds.js';
import { unsafePatternReason } from './pattern-safety.js';
import { DEFAULT_TOPICS, TOPIC_NAME_PATTERN } from './messages.js';
import {
  isIsoDateTime,
  parseUpdate,
  validateBase,
  type ChangeResult,
  type EntityValidator,
  type ValidationResult,
} from './state-model.js';
import type { JsonSchema, TopicDefinition, TopicInfo } from './topic-definition.js';

/** Longest `pattern` (or `patternProperties` key) a topic schema may hold. */
export const MAX_SCHEMA_PATTERN_LENGTH = 512;

/** Most `pattern`s (and `patternProperties` keys) one topic schema may hold: each is proven ReDoS-free first. */
export const MAX_SCHEMA_PATTERNS = 16;

/** Default TTL (ms) of a topic defined by name only (no catalog entry, no schema): 30 minutes. */
export const GENERIC_TTL_MS = 30 * 60_000;

/** A definition the registry cannot take: bad name, duplicate, or a schema that does not compile. */
export class TopicRegistryError extends Error {
  override readonly name = 'TopicRegistryError';
  /** Stable code. */
  readonly code = 'BAD_TOPIC';
  constructor(
    /** The topic concerned. */
    readonly topic: string,
    /** Path inside the definition (`schema.properties.x.pattern`; `''`: the definition itself). */
    readonly path: string,
    message: string,
  ) {
    super(`topic ${JSON.stringify(topic)}${path === '' ? '' : ` ${path}`}: ${message}`);
  }
}

type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;
/** ajv-formats is CommonJS: its default export arrives as the module object or as the plugin itself. */
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ??
  (formatsModule as unknown as FormatsPlugin);

let ajvInstance: Ajv2020 | null = null;

/**
 * The one ajv instance (made on first use): setting one up compiles the draft 2020-12 meta-schema and the formats,
 * which costs far more than compiling a topic schema. Sharing it is safe: schemas may hold no `$id` (nothing is
 * registered by name) and ajv caches each compiled schema by its object, so a catalog schema compiles once per
 * process and every registry's own schemas once per registry.
 */
function sharedAjv(): Ajv2020 {
  if (ajvInstance !== null) return ajvInstance;
  const ajv = new Ajv2020({
    strict: true,
    allErrors: false,
    // String lengths in UTF-16 code units, as the rest of the protocol counts them.
    unicode: false,
    ownProperties: true,
    addUsedSchema: false,
    // ajv deprecates `unicode: false` (it still works) and says so on the console: keep the console quiet.
    logger: false,
  });
  addFormats(ajv);
  ajv.addFormat('iso-date-time', { type: 'string', validate: (value: string) => isIsoDateTime(value) });
  ajvInstance = ajv;
  return ajv;
}

const REF_KEYWORDS = new Set(['$ref', '$dynamicRef', '$recursiveRef']);

/** Refuses what a compiled schema must not hold (see the module doc); returns the offending path and why. */
function schemaProblem(schema: JsonSchema): { path: string; message: string } | null {
  const violation = checkJsonBounds(schema);
  if (violation !== null) return { path: 'schema', message: violation.message };
  const stack: { value: unknown; path: string }[] = [{ value: schema, path: 'schema' }];
  let patternCount = 0;
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string };
    if (typeof value !== 'object' || value === null) continue;
    for (const [key, child] of Object.entries(value)) {
      const at = `${path}.${key}`;
      if (REF_KEYWORDS.has(key) && (typeof child !== 'string' || !child.startsWith('#'))) {
        return { path: at, message: 'only references inside the schema itself ("#...") are allowed' };
      }
      if (key === '$id' || key === '$anchor' || key === '$dynamicAnchor') {
        return { path: at, message: `${key} is not supported in a topic schema` };
      }
      const patterns =
        key === 'pattern' && typeof child === 'string'
          ? [{ pattern: child, where: at }]
          : key === 'patternProperties' && typeof child === 'object' && child !== null
            ? Object.keys(child).map((k) => ({
                pattern: k,
                where: `${at}[${JSON.stringify(k.slice(0, 40))}]`,
              }))
            : [];
      for (const { pattern, where } of patterns) {
        if (++patternCount > MAX_SCHEMA_PATTERNS) {
          return { path: where, message: `more than ${MAX_SCHEMA_PATTERNS} patterns in one schema` };
        }
        if (pattern.length > MAX_SCHEMA_PATTERN_LENGTH) {
          return { path: where, message: `longer than ${MAX_SCHEMA_PATTERN_LENGTH} characters` };
        }
        const unsafe = unsafePatternReason(pattern);
        if (unsafe !== null) return { path: where, message: `pattern ${JSON.stringify(pattern)} ${unsafe}` };
      }
      stack.push({ value: child, path: at });
    }
  }
  return null;
}

/** The dotted path an ajv error names: its instance path, plus the missing or extra property. */
function fieldOf(error: ErrorObject): string {
  const parts = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as { missingProperty?: unknown; additionalProperty?: unknown };
  if (error.keyword === 'required' && typeof params.missingProperty === 'string') {
    parts.push(params.missingProperty);
  } else if (error.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    parts.push(params.additionalProperty);
  }
  let out = '';
  for (const part of parts) out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

/** The base rule, then the compiled schema; never throws. */
function entityValidator(check: ValidateFunction): EntityValidator {
  return (value): ValidationResult => {
    const base = validateBase(value);
    if (!base.ok) return base;
    try {
      if (check(value)) return base;
    } catch {
      // a getter or toJSON of a library caller's value threw: refuse, never throw
      return { ok: false, field: '', error: 'could not be read as JSON' };
    }
    const error = check.errors?.[0];
    if (error === undefined) return { ok: false, field: '', error: 'does not match the topic schema' };
    return { ok: false, field: fieldOf(error), error: error.message ?? 'does not match the topic schema' };
  };
}

/** The definition of a topic known by name only: any object with the base fields; no map layer. */
export function genericTopicDefinition(name: string): TopicDefinition {
  return {
    name,
    idField: 'id',
    locationField: null,
    display: { label: name, color: '#607d8b', fields: [] },
    schema: { type: 'object' },
    ttlMs: GENERIC_TTL_MS,
    alerts: [],
  };
}

/** What `createServer({ topics })` and the services accept for their topics. */
export type TopicsInput = TopicRegistry | readonly (string | TopicDefinition)[];

/** The topics a server serves, in order, each with its compiled validator. Immutable once built. */
export class TopicRegistry {
  /** Topic names, in registry order. */
  readonly names: readonly string[];
  readonly #definitions = new Map<string, TopicDefinition>();
  readonly #validators = new Map<string, EntityValidator>();

  /**
   * Compiles every definition's schema (once). Throws a {@link TopicRegistryError} for a name that does not match
   * `TOPIC_NAME_PATTERN`, a duplicate name, a negative TTL or a schema that is refused or does not compile.
   */
  constructor(definitions: readonly TopicDefinition[]) {
    const ajv = sharedAjv();
    for (const definition of definitions) {
      const { name } = definition;
      if (typeof name !== 'string' || !TOPIC_NAME_PATTERN.test(name)) {
        throw new TopicRegistryError(String(name), 'name', `must match ${String(TOPIC_NAME_PATTERN)}`);
      }
      if (this.#definitions.has(name)) throw new TopicRegistryError(name, '', 'is defined twice');
      if (!(definition.ttlMs >= 0)) throw new TopicRegistryError(name, 'ttlMs', 'must be a number >= 0');
      const problem = schemaProblem(definition.schema);
      if (problem !== null) throw new TopicRegistryError(name, problem.path, problem.message);
      let check: ValidateFunction;
      try {
        check = ajv.compile(definition.schema as Record<string, unknown>);
      } catch (error) {
        throw new TopicRegistryError(name, 'schema', error instanceof Error ? error.message : String(error));
      }
      this.#definitions.set(name, definition);
      this.#validators.set(name, entityValidator(check));
    }
    this.names = Object.freeze([...this.#definitions.keys()]);
  }

  /** Whether `name` is a topic of this registry. */
  has(name: string): boolean {
    return this.#definitions.has(name);
  }

  /** The definition of `name`, or `undefined`. */
  definition(name: string): TopicDefinition | undefined {
    return this.#definitions.get(name);
  }

  /** What clients may know of every topic, in registry order (`GET /api/topics`). */
  info(): TopicInfo[] {
    return [...this.#definitions.values()].map(({ name, idField, locationField, display }) => ({
      name,
      idField,
      locationField,
      display,
    }));
  }

  /** The validator of `name`: base rule + its schema; the base rule alone for a name outside the registry. */
  validator(name: string): EntityValidator {
    return this.#validators.get(name) ?? validateBase;
  }

  /** The protocol's UPDATE rule (`parseUpdate`) with `topic`'s validator. */
  parseUpdate(topic: string, data: unknown): ChangeResult {
    return parseUpdate(topic, data, this.validator(topic));
  }
}

/** A registry of `definitions`, in that order (see {@link TopicRegistry}). */
export function createTopicRegistry(definitions: readonly TopicDefinition[]): TopicRegistry {
  return new TopicRegistry(definitions);
}

let defaultRegistry: TopicRegistry | null = null;

/** The library default: the four city topics of the catalog (built once, shared: a registry is immutable). */
export function defaultTopicRegistry(): TopicRegistry {
  defaultRegistry ??= new TopicRegistry(
    DEFAULT_TOPICS.map((name) => BUILTIN_TOPICS[name as BuiltinTopicName]),
  );
  return defaultRegistry;
}

/**
 * The registry for what a caller passed as `topics`: a registry as is; names and definitions in order, a name
 * taking its catalog definition when it has one and the generic base schema otherwise; `undefined`: the default.
 */
export function resolveTopicRegistry(topics: TopicsInput | undefined): TopicRegistry {
  if (topics === undefined) return defaultTopicRegistry();
  if (topics instanceof TopicRegistry) return topics;
  return new TopicRegistry(
    topics.map((topic) =>
      typeof topic === 'string' ? (builtinTopic(topic) ?? genericTopicDefinition(topic)) : topic,
    ),
  );
}
