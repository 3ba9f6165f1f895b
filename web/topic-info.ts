/**
 * What the dashboard knows of each topic: the registry's `TopicInfo` (from `GET /api/topics`, contract of
 * `src/protocol/topic-definition.ts`), read defensively, or default hints for the topics a `CONNECTED` frame lists
 * when that route is not there (an older server, or one that wants credentials). Also the readers every generic
 * view shares: a dotted field path, an entity's position, its display name, and a field value as short text.
 *
 * Everything here treats its input as hostile: the response is bounded in count and length, colours must be plain
 * CSS colours, paths only walk an object's own keys, and values come out as bounded plain strings.
 *
 * @module
 */
import { TOPIC_NAME_PATTERN } from '../src/protocol/messages.js';
import type { DisplayField, TopicInfo } from '../src/protocol/topic-definition.js';
import { isRecord } from '../src/shared/json.js';
import { readEntityPath } from '../src/protocol/entity-path.js';

/** Most topics the dashboard renders (the rest of a longer list is ignored). */
export const MAX_TOPICS = 64;
/** Most hinted fields per topic (the contract says at most 8). */
export const MAX_FIELDS = 8;
/** Longest text of one rendered value; longer ones end in `…`. */
export const MAX_TEXT = 80;
/** Longest label, unit or icon taken from the hints. */
const MAX_LABEL = 48;
const MAX_UNIT = 16;
const MAX_ICON = 4;
/** Deepest dotted path followed. */
const MAX_PATH_DEPTH = 6;

/** Marker colours of topics without a usable hint, picked by a hash of the name. */
const PALETTE = ['#22d3ee', '#a78bfa', '#f472b6', '#fb923c', '#4ade80', '#facc15', '#60a5fa', '#f87171'];

/** `#rgb`, `#rrggbb(aa)`, a CSS colour keyword, or a simple `rgb()`/`hsl()` with numbers only. */
const COLOR_PATTERN = /^(#[0-9a-f]{3,8}|[a-z]{3,24}|(rgb|rgba|hsl|hsla)\([0-9.,%\s/-]{1,40}\))$/i;

/** Cuts `text` to `max` characters (by code point), ending in `…` when cut. */
export function truncate(text: string, max = MAX_TEXT): string {
  if (text.length <= max) return text;
  // A head long enough to hold max + 1 code points (at most two UTF-16 units each): a huge string is not split whole.
  const head = text.slice(0, max * 2 + 2);
  const points = Array.from(head);
  if (points.length <= max && head.length === text.length) return text;
  return `${points.slice(0, max - 1).join('')}…`;
}

function boundedString(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? truncate(value.trim(), max) : undefined;
}

/** The colour of a hint when it is a plain CSS colour, else one from the palette for `name`. */
export function safeColor(color: unknown, name: string): string {
  if (typeof color === 'string' && COLOR_PATTERN.test(color.trim())) return color.trim();
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
  return PALETTE[Math.abs(hash) % PALETTE.length] ?? '#22d3ee';
}

/** A dotted path of up to {@link MAX_PATH_DEPTH} plain segments, or `null`. */
function safePath(value: unknown): string | null {
  if (typeof value !== 'string' || value === '' || value.length > 128) return null;
  const segments = value.split('.');
  return segments.length <= MAX_PATH_DEPTH && segments.every((s) => s !== '') ? value : null;
}

/** Default hints of a topic the server lists without any: its name, a palette colour, `location` if present. */
export function defaultTopicInfo(name: string): TopicInfo {
  return {
    name,
    idField: 'id',
    locationField: 'location',
    display: { label: name, color: safeColor(undefined, name), fields: [] },
  };
}

function readFields(value: unknown): DisplayField[] {
  if (!Array.isArray(value)) return [];
  const fields: DisplayField[] = [];
  for (const item of value.slice(0, MAX_FIELDS)) {
    if (!isRecord(item)) continue;
    const field = safePath(item.field);
    if (field === null) continue;
    const label = boundedString(item.label, MAX_LABEL);
    const unit = boundedString(item.unit, MAX_UNIT);
    fields.push({
      field,
      ...(label === undefined ? {} : { label }),
      ...(unit === undefined ? {} : { unit }),
    });
  }
  return fields;
}

/**
 * One entry of `GET /api/topics`, or `null` when its name is not a protocol topic name (`TOPIC_NAME_PATTERN`). Bad
 * hints fall back to defaults.
 */
export function readTopicInfo(value: unknown): TopicInfo | null {
  if (!isRecord(value) || typeof value.name !== 'string' || !TOPIC_NAME_PATTERN.test(value.name)) return null;
  const name = value.name;
  const display = isRecord(value.display) ? value.display : {};
  const icon = boundedString(display.icon, MAX_ICON);
  return {
    name,
    idField: safePath(value.idField) ?? 'id',
    locationField: value.locationField === null ? null : (safePath(value.locationField) ?? 'location'),
    display: {
      label: boundedString(display.label, MAX_LABEL) ?? name,
      color: safeColor(display.color, name),
      ...(icon === undefined ? {} : { icon }),
      fields: readFields(display.fields),
    },
  };
}

/** The body of `GET /api/topics` (`{ topics: TopicInfo[] }`) read as a list, each name once; `null` if malformed. */
export function readTopicsResponse(body: unknown): TopicInfo[] | null {
  if (!isRecord(body) || !Array.isArray(body.topics)) return null;
  const seen = new Set<string>();
  const topics: TopicInfo[] = [];
  for (const item of body.topics) {
    if (topics.length >= MAX_TOPICS) break;
    const info = readTopicInfo(item);
    if (info === null || seen.has(info.name)) continue;
    seen.add(info.name);
    topics.push(info);
  }
  return topics;
}

/**
 * Fetches `GET /api/topics` from `base` (an http(s) origin). Resolves to the topics, or `null` when the route is
 * missing, refuses (401/403), times out after `timeoutMs` or answers something else than the contract.
 */
export async function fetchTopics(base: string, timeoutMs = 3000): Promise<TopicInfo[] | null> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetch(new URL('/api/topics', base), {
      signal: controller.signal,
      headers: { accept: 'application/json' },
      credentials: 'same-origin',
    });
    if (!res.ok) return null;
    return readTopicsResponse(await res.json());
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The `{lat, lon}` at `info.locationField` when both are finite and in range, else `null`. */
export function locationOf(info: TopicInfo, entity: unknown): { lat: number; lon: number } | null {
  if (info.locationField === null) return null;
  const point = readEntityPath(entity, info.locationField);
  if (!isRecord(point)) return null;
  const { lat, lon } = point;
  if (typeof lat !== 'number' || typeof lon !== 'number') return null;
  if (!(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) return null;
  return { lat, lon };
}

/** The name an entity is listed under: its `name`, else `label`, else its id. Bounded text. */
export function displayName(entity: { readonly id: string } & Record<string, unknown>): string {
  const name = typeof entity.name === 'string' && entity.name !== '' ? entity.name : undefined;
  const label = typeof entity.label === 'string' && entity.label !== '' ? entity.label : undefined;
  return truncate(name ?? label ?? entity.id);
}

/** A value as short plain text: numbers with at most 2 decimals, `yes`/`no`, JSON for objects; `—` when absent. */
export function formatValue(value: unknown, unit?: string): string {
  let text: string;
  if (value === undefined || value === null || value === '') return '—';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return '—';
    text = Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
  } else if (typeof value === 'boolean') {
    text = value ? 'yes' : 'no';
  } else if (typeof value === 'string') {
    text = value;
  } else {
    // Bounded before stringifying: a huge object is not serialised whole to show 80 characters of it.
    text = Array.isArray(value) ? `[${value.length} items]` : '{…}';
  }
  return truncate(unit === undefined ? text : `${text} ${unit}`);
}

/** The heading of a hinted field: its label, else the last segment of its path. */
export function fieldLabel(field: DisplayField): string {
  return field.label ?? field.field.split('.').pop() ?? field.field;
}
