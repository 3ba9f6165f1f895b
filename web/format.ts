/**
 * Formatting and colour scales of the dashboard.
 *
 * @module
 */
import type { AqiCategory } from '../src/protocol/topics.js';

/** `0.4s`, `12s`, `3m 05s`, `2h 10m`. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** `just now`, `42s ago`, `5m ago`, `3h ago` for an ISO time, relative to `now`. */
export function formatAgo(iso: string | undefined, now: number): string {
  const t = iso === undefined ? Number.NaN : Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** `HH:MM:SS` of an ISO time (local). */
export function formatClock(iso: string | number): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '--:--:--';
  return date.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });
}

/** A number with `digits` decimals, or `—`. */
export function formatNumber(value: number | undefined, digits = 0): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';
}

/** Human label of an AQI category. */
export const AQI_LABEL: Readonly<Record<AqiCategory, string>> = {
  good: 'Good',
  moderate: 'Moderate',
  'unhealthy-sensitive': 'Unhealthy (sensitive)',
  unhealthy: 'Unhealthy',
  'very-unhealthy': 'Very unhealthy',
  hazardous: 'Hazardous',
};

/** Marker colour of an AQI category (EPA hues, tuned for a dark background). */
export const AQI_COLOR: Readonly<Record<AqiCategory, string>> = {
  good: '#34d27b',
  moderate: '#f2d43d',
  'unhealthy-sensitive': '#ff9a3c',
  unhealthy: '#ff4d4f',
  'very-unhealthy': '#b36bd6',
  hazardous: '#a3153a',
};

/** Colour of an accident severity 1..5. */
export function severityColor(severity: number): string {
  return (
    ['#7dd3fc', '#facc15', '#fb923c', '#f43f5e', '#e11d48'][
      Math.min(5, Math.max(1, Math.round(severity))) - 1
    ] ?? '#f43f5e'
  );
}

/** Label of an accident severity 1..5. */
export function severityLabel(severity: number): string {
  return (
    ['Minor', 'Moderate', 'Serious', 'Severe', 'Major'][Math.min(5, Math.max(1, Math.round(severity))) - 1] ??
    'Unknown'
  );
}

/** Compass point of a direction in degrees. */
export function compass(deg: number | undefined): string {
  if (typeof deg !== 'number' || !Number.isFinite(deg)) return '';
  const points = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];
  return points[Math.round((((deg % 360) + 360) % 360) / 45) % 8] ?? '';
}
