/**
 * Field mappings for feeds without a standard schema: which property of a record becomes which entity field,
 * with constants and value translation tables. Shared by the generic GeoJSON and camera-list parsers.
 *
 * @module
 */
import { getPath, toNumber } from './types.js';

/** How to build an entity from a record. */
export interface FieldMapping {
  /** Entity field -> dotted path in the record (e.g. `{ "severity": "props.level", "roadName": "street" }`). */
  readonly fields: Readonly<Record<string, string>>;
  /** Entity fields set to fixed values (e.g. `{ "kind": "collision" }`). */
  readonly constants?: Readonly<Record<string, unknown>>;
  /** Per entity field, a table translating record values (as strings) to entity values. */
  readonly valueMaps?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** Entity fields that are numbers: numeric strings in a feed are converted. */
const NUMERIC_FIELDS = new Set([
  'severity',
  'lanesBlocked',
  'temperatureC',
  'humidityPct',
  'windSpeedKmh',
  'windDirectionDeg',
  'precipitationMm',
  'weatherCode',
  'aqi',
  'pm25',
  'pm10',
  'no2',
  'o3',
  'lat',
  'lon',
]);

/** A record value as entity field `field`: through the field's value map, numeric strings made numbers. */
export function translate(field: string, value: unknown, mapping: Pick<FieldMapping, 'valueMaps'>): unknown {
  let out = value;
  const table = mapping.valueMaps?.[field];
  if (table !== undefined && out !== undefined && out !== null) {
    const key = String(out);
    if (Object.prototype.hasOwnProperty.call(table, key)) out = table[key];
  }
  if (NUMERIC_FIELDS.has(field) && typeof out === 'string') out = toNumber(out) ?? out;
  return out;
}

/** Builds the fields of an entity from `record` (location and id are left to the caller). */
export function applyMapping(record: unknown, mapping: FieldMapping): Record<string, unknown> {
  const out: Record<string, unknown> = { ...mapping.constants };
  for (const [field, path] of Object.entries(mapping.fields)) {
    const value = translate(field, getPath(record, path), mapping);
    if (value !== undefined && value !== null) out[field] = value;
  }
  return out;
}
