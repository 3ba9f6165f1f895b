/**
 * The dashboard's panels: weather card, accidents list, air-quality table and alerts feed. Each renders its whole
 * content from the current state (they are small), into the element it was given.
 *
 * @module
 */
import type { Accident, AirQualityStation, AqiCategory, WeatherReading } from '../src/protocol/topics.js';
import { aqiCategory } from '../src/protocol/topics.js';
import type { AlertView } from '../src/protocol/payloads.js';
import { h, svg } from './dom.js';
import {
  AQI_COLOR,
  AQI_LABEL,
  compass,
  formatAgo,
  formatClock,
  formatNumber,
  severityColor,
  severityLabel,
} from './format.js';
import { assertNever } from '../src/protocol/index.js';
import { truncate } from './topic-info.js';

// ---------------------------------------------------------------------------------------------------------------
// Weather
// ---------------------------------------------------------------------------------------------------------------

type Sky = 'clear' | 'cloud' | 'rain' | 'snow' | 'storm' | 'fog';

function skyOf(reading: WeatherReading): Sky {
  const text = reading.condition.toLowerCase();
  const code = reading.weatherCode;
  if (/thunder|storm/.test(text) || (code !== undefined && code >= 95)) return 'storm';
  if (
    /snow|sleet/.test(text) ||
    (code !== undefined && code >= 71 && code <= 86 && !(code >= 80 && code <= 82))
  )
    return 'snow';
  if (/rain|drizzle|shower/.test(text) || (code !== undefined && code >= 51 && code <= 82)) return 'rain';
  if (/fog|mist|haze/.test(text) || code === 45 || code === 48) return 'fog';
  if (/cloud|overcast/.test(text) || (code !== undefined && code >= 1 && code <= 3)) return 'cloud';
  return 'clear';
}

/** A small drawn weather glyph (no emoji font needed). */
function skyIcon(sky: Sky, size: number): SVGSVGElement {
  const icon = svg('svg', {
    viewBox: '0 0 48 48',
    width: size,
    height: size,
    class: `sky sky-${sky}`,
    'aria-hidden': 'true',
  });
  const cloud = () =>
    svg('path', { class: 'sky-cloud', d: 'M14 34h21a8 8 0 0 0 0-16 11 11 0 0 0-21-2 9 9 0 0 0 0 18z' });
  switch (sky) {
    case 'clear': {
      icon.append(svg('circle', { cx: 24, cy: 24, r: 9, class: 'sky-sun' }));
      for (let i = 0; i < 8; i++) {
        const a = (i * Math.PI) / 4;
        icon.append(
          svg('line', {
            class: 'sky-ray',
            x1: (24 + Math.cos(a) * 14).toFixed(1),
            y1: (24 + Math.sin(a) * 14).toFixed(1),
            x2: (24 + Math.cos(a) * 19).toFixed(1),
            y2: (24 + Math.sin(a) * 19).toFixed(1),
          }),
        );
      }
      break;
    }
    case 'cloud':
      icon.append(svg('circle', { cx: 31, cy: 15, r: 7, class: 'sky-sun' }), cloud());
      break;
    case 'rain':
      icon.append(cloud());
      for (const x of [17, 25, 33])
        icon.append(svg('line', { class: 'sky-rain', x1: x, y1: 38, x2: x - 3, y2: 45 }));
      break;
    case 'snow':
      icon.append(cloud());
      for (const x of [17, 25, 33]) icon.append(svg('circle', { class: 'sky-snow', cx: x, cy: 41, r: 2 }));
      break;
    case 'storm':
      icon.append(cloud(), svg('path', { class: 'sky-bolt', d: 'M25 33l-5 8h5l-3 7 9-10h-5l3-5z' }));
      break;
    case 'fog':
      for (const y of [18, 25, 32, 39])
        icon.append(svg('line', { class: 'sky-fog', x1: 8, y1: y, x2: 40, y2: y }));
      break;
    default:
      assertNever(sky);
  }
  return icon;
}

/** Renders the weather card: the main station large, the others compact. */
export function renderWeather(host: HTMLElement, readings: readonly WeatherReading[], now: number): void {
  if (readings.length === 0) {
    host.replaceChildren(h('p', { class: 'empty' }, 'Waiting for weather…'));
    return;
  }
  const sorted = [...readings].sort((a, b) => a.name.localeCompare(b.name));
  const main = sorted.find((r) => /centr|center|downtown|city/i.test(r.name)) ?? sorted[0];
  if (main === undefined) return;
  const others = sorted.filter((r) => r !== main);
  const temps = readings.map((r) => r.temperatureC).filter(Number.isFinite);
  const low = Math.min(...temps);
  const high = Math.max(...temps);
  const mainBlock = h(
    'div',
    { class: 'wx-main', 'data-testid': `weather-station-${main.id}` },
    skyIcon(skyOf(main), 64),
    h(
      'div',
      { class: 'wx-main-text' },
      h('div', { class: 'wx-temp', 'data-testid': 'weather-temp' }, `${formatNumber(main.temperatureC, 1)}°`),
      h('div', { class: 'wx-cond' }, main.condition),
      h('div', { class: 'wx-place' }, `${main.name} · ${formatAgo(main.updatedAt, now)}`),
    ),
    h(
      'dl',
      { class: 'wx-facts' },
      h('dt', {}, 'Wind'),
      h('dd', {}, `${formatNumber(main.windSpeedKmh)} km/h ${compass(main.windDirectionDeg)}`),
      h('dt', {}, 'Humidity'),
      h('dd', {}, `${formatNumber(main.humidityPct)} %`),
      h('dt', {}, 'Precip.'),
      h('dd', {}, `${formatNumber(main.precipitationMm, 1)} mm`),
      h('dt', {}, 'Range'),
      h('dd', {}, `${formatNumber(low, 0)}° – ${formatNumber(high, 0)}°`),
    ),
  );
  const list = h(
    'ul',
    { class: 'wx-others' },
    ...others.map((r) =>
      h(
        'li',
        { 'data-testid': `weather-station-${r.id}` },
        skyIcon(skyOf(r), 22),
        h('span', { class: 'wx-other-name' }, r.name),
        h('span', { class: 'wx-other-temp' }, `${formatNumber(r.temperatureC, 1)}°`),
        h('span', { class: 'wx-other-wind' }, `${formatNumber(r.windSpeedKmh)} km/h`),
      ),
    ),
  );
  host.replaceChildren(mainBlock, list);
}

// ---------------------------------------------------------------------------------------------------------------
// Accidents
// ---------------------------------------------------------------------------------------------------------------

/** Accidents by severity (highest first), then most recent first. */
export function sortAccidents(accidents: readonly Accident[]): Accident[] {
  return [...accidents].sort(
    (a, b) =>
      b.severity - a.severity ||
      Date.parse(b.reportedAt) - Date.parse(a.reportedAt) ||
      a.id.localeCompare(b.id),
  );
}

/** Renders the accidents list. */
export function renderAccidents(host: HTMLElement, accidents: readonly Accident[], now: number): void {
  if (accidents.length === 0) {
    host.replaceChildren(h('li', { class: 'empty' }, 'No active incidents'));
    return;
  }
  host.replaceChildren(
    ...sortAccidents(accidents).map((a) =>
      h(
        'li',
        {
          class: `incident sev-${a.severity}`,
          'data-testid': `accident-${a.id}`,
          'data-severity': a.severity,
          style: `--sev:${severityColor(a.severity)}`,
        },
        h('span', { class: 'sev-badge', title: severityLabel(a.severity) }, `S${a.severity}`),
        h(
          'div',
          { class: 'incident-body' },
          h('div', { class: 'incident-title' }, a.description),
          h(
            'div',
            { class: 'incident-meta' },
            h('span', { class: 'tag' }, a.kind),
            a.roadName ? h('span', {}, a.roadName) : null,
            typeof a.lanesBlocked === 'number' && a.lanesBlocked > 0
              ? h('span', {}, `${a.lanesBlocked} lane${a.lanesBlocked === 1 ? '' : 's'} blocked`)
              : null,
          ),
        ),
        h('time', { class: 'incident-age', datetime: a.reportedAt }, formatAgo(a.reportedAt, now)),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Air quality
// ---------------------------------------------------------------------------------------------------------------

/** The station's category: the one it reports, or the one its AQI falls in. */
export function categoryOf(station: AirQualityStation): AqiCategory {
  return station.category in AQI_COLOR ? station.category : aqiCategory(station.aqi);
}

/** Renders the air-quality table body, worst AQI first. */
export function renderAirQuality(
  body: HTMLTableSectionElement,
  stations: readonly AirQualityStation[],
): void {
  if (stations.length === 0) {
    body.replaceChildren(
      h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'Waiting for air-quality stations…')),
    );
    return;
  }
  const sorted = [...stations].sort((a, b) => b.aqi - a.aqi || a.name.localeCompare(b.name));
  body.replaceChildren(
    ...sorted.map((s) => {
      const category = categoryOf(s);
      return h(
        'tr',
        {
          class: `aqi-row aqi-${category}`,
          'data-testid': `aq-row-${s.id}`,
          'data-category': category,
          style: `--aqi:${AQI_COLOR[category]}`,
        },
        h('td', { class: 'aq-name' }, s.name),
        h('td', { class: 'aq-value' }, h('span', { class: 'aqi-chip' }, formatNumber(s.aqi))),
        h('td', { class: 'aq-cat' }, AQI_LABEL[category]),
        h('td', { class: 'num' }, formatNumber(s.pm25, 1)),
        h('td', { class: 'num' }, formatNumber(s.pm10, 1)),
        h('td', { class: 'num' }, formatNumber(s.no2, 1)),
        h('td', { class: 'num' }, formatNumber(s.o3, 1)),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------------------------

/** One entry of the alerts feed, read leniently from an ALERT's `data` (publishers may send any shape). */
export interface FeedAlert {
  readonly key: string;
  /** The alert's id (an alert with one is active until resolved), else `undefined` (transient). */
  readonly id: string | undefined;
  /** The topic of the frame that carried it (where it is active), `undefined` for a broadcast. */
  readonly scope: string | undefined;
  readonly severity: 'info' | 'warning' | 'critical';
  readonly message: string;
  readonly topic: string | undefined;
  readonly state: 'raised' | 'resolved';
  readonly at: string;
  readonly rule: string | undefined;
}

let alertCounter = 0;

/** An ALERT as a feed entry, from the protocol's typed view of its data (`readAlert`, given by the SDK). */
export function toFeedAlert(alert: AlertView, timestamp: string, scope?: string): FeedAlert {
  return {
    key: `${alert.id ?? 'alert'}:${++alertCounter}`,
    id: alert.id,
    scope,
    severity: alert.severity,
    message: truncate(alert.message, 240),
    topic: alert.topic === undefined ? undefined : truncate(alert.topic, 64),
    state: alert.state,
    at: alert.raisedAt !== undefined && alert.state !== 'resolved' ? alert.raisedAt : timestamp,
    rule: alert.rule === undefined ? undefined : truncate(alert.rule, 64),
  };
}

/** Renders the alerts feed, newest first. */
export function renderAlerts(host: HTMLElement, alerts: readonly FeedAlert[]): void {
  if (alerts.length === 0) {
    host.replaceChildren(h('li', { class: 'empty' }, 'No alerts yet'));
    return;
  }
  host.replaceChildren(
    ...alerts.map((a) =>
      h(
        'li',
        {
          class: `alert alert-${a.severity} is-${a.state}`,
          'data-testid': 'alert-item',
          'data-severity': a.severity,
          'data-state': a.state,
          'data-alert-id': a.id,
        },
        h('span', { class: 'alert-dot' }),
        h(
          'div',
          { class: 'alert-body' },
          h('div', { class: 'alert-message' }, a.message),
          h(
            'div',
            { class: 'alert-meta' },
            h(
              'span',
              { class: `alert-level level-${a.severity}` },
              a.state === 'resolved' ? 'resolved' : a.severity,
            ),
            a.topic ? h('span', {}, a.topic) : null,
            a.rule ? h('span', {}, a.rule) : null,
          ),
        ),
        h('time', { class: 'alert-time', datetime: a.at }, formatClock(a.at)),
      ),
    ),
  );
}
