/**
 * The operations-room dashboard: one citypulse client (the SDK), the four city topics, rendered into the panels
 * of index.html. Query parameters: `?tiles=<url template>` draws raster tiles under the map; `?ws=<url>`
 * connects elsewhere than `ws(s)://<this host>/ws`.
 *
 * @module
 */
import { createClient } from '../src/client/index.js';
import type { ConnectionState } from '../src/client/index.js';
import { DEFAULT_TOPICS, WS_PATH } from '../src/protocol/messages.js';
import type { Accident, AirQualityStation, Camera, WeatherReading } from '../src/protocol/topics.js';
import { byTestId } from './dom.js';
import { AQI_COLOR, AQI_LABEL, formatClock, severityColor } from './format.js';
import { CityMap } from './map.js';
import type { MapMarker } from './map.js';
import {
  categoryOf,
  renderAccidents,
  renderAirQuality,
  renderAlerts,
  renderWeather,
  toFeedAlert,
} from './panels.js';
import type { FeedAlert } from './panels.js';
import { RateMeter, StatusBar } from './status.js';
import { assertNever } from '../src/protocol/index.js';

const MAX_ALERTS = 60;

type Panel = 'map' | 'weather' | 'accidents' | 'airQuality' | 'alerts' | 'summary';

const params = new URLSearchParams(location.search);
const wsUrl =
  params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;

const client = createClient({
  url: wsUrl,
  topics: DEFAULT_TOPICS,
  // An operations room wants the data back quickly: retry often, never give up.
  backoff: { initialMs: 250, maxMs: 5000, factor: 2 },
});

const map = new CityMap(byTestId('map'), { tiles: params.get('tiles') });
const status = new StatusBar(byTestId('status-bar'), DEFAULT_TOPICS);
const rate = new RateMeter(5000);
const lastDataAt = new Map<string, number>();
const alerts: FeedAlert[] = [];
/** Alert id -> raised and not yet resolved. */
const activeAlerts = new Set<string>();

// ---------------------------------------------------------------------------------------------------------------
// Render scheduling: events mark panels dirty; one frame renders them.
// ---------------------------------------------------------------------------------------------------------------

const dirty = new Set<Panel>();
let scheduled = false;

function markDirty(...panels: Panel[]): void {
  for (const panel of panels) dirty.add(panel);
  if (scheduled) return;
  scheduled = true;
  if (document.visibilityState === 'visible') requestAnimationFrame(flush);
  else setTimeout(flush, 250);
}

function flush(): void {
  scheduled = false;
  const now = Date.now();
  const panels = [...dirty];
  dirty.clear();
  for (const panel of panels) {
    try {
      render(panel, now);
    } catch (error) {
      console.error(`citypulse: rendering ${panel} failed`, error);
    }
  }
}

function values<T>(topic: 'cameras' | 'weather' | 'accidents' | 'airQuality'): T[] {
  return [...client.state(topic).values()] as T[];
}

function render(panel: Panel, now: number): void {
  switch (panel) {
    case 'map':
      renderMap();
      break;
    case 'weather':
      renderWeather(byTestId('weather-card'), values<WeatherReading>('weather'), now);
      break;
    case 'accidents': {
      const accidents = values<Accident>('accidents');
      renderAccidents(byTestId('accidents-list'), accidents, now);
      byTestId('accidents-count').textContent = String(accidents.length);
      break;
    }
    case 'airQuality':
      renderAirQuality(byTestId<HTMLTableSectionElement>('aq-body'), values<AirQualityStation>('airQuality'));
      break;
    case 'alerts':
      renderAlerts(byTestId('alerts-feed'), alerts);
      break;
    case 'summary':
      renderSummary();
      break;
    default:
      assertNever(panel);
  }
}

function renderMap(): void {
  const markers: MapMarker[] = [];
  for (const s of values<WeatherReading>('weather')) {
    if (!s.location) continue;
    markers.push({
      id: s.id,
      kind: 'weather',
      lat: s.location.lat,
      lon: s.location.lon,
      color: '#7dd3fc',
      label: `${Math.round(s.temperatureC)}°`,
      title: `${s.name}: ${s.temperatureC.toFixed(1)} °C, ${s.condition}`,
    });
  }
  for (const s of values<AirQualityStation>('airQuality')) {
    if (!s.location) continue;
    const category = categoryOf(s);
    markers.push({
      id: s.id,
      kind: 'air',
      lat: s.location.lat,
      lon: s.location.lon,
      color: AQI_COLOR[category],
      label: String(Math.round(s.aqi)),
      pulse: s.aqi > 150,
      title: `${s.name}: AQI ${Math.round(s.aqi)} (${AQI_LABEL[category]})`,
    });
  }
  for (const c of values<Camera>('cameras')) {
    if (!c.location) continue;
    markers.push({
      id: c.id,
      kind: 'camera',
      lat: c.location.lat,
      lon: c.location.lon,
      color: c.status === 'online' ? '#38bdf8' : c.status === 'offline' ? '#64748b' : '#f59e0b',
      muted: c.status === 'offline',
      title: `${c.name} (${c.status})${c.area ? ` · ${c.area}` : ''}`,
    });
  }
  for (const a of values<Accident>('accidents')) {
    if (!a.location) continue;
    markers.push({
      id: a.id,
      kind: 'accident',
      lat: a.location.lat,
      lon: a.location.lon,
      color: severityColor(a.severity),
      label: String(a.severity),
      pulse: a.severity >= 4,
      title: `S${a.severity} ${a.kind}: ${a.description}`,
    });
  }
  map.render(markers);
  byTestId('map-offline').hidden = markers.length > 0;
}

function renderSummary(): void {
  const cameras = values<Camera>('cameras');
  const online = cameras.filter((c) => c.status === 'online').length;
  byTestId('summary-cameras').textContent = cameras.length === 0 ? '—' : `${online}/${cameras.length}`;
  const accidents = values<Accident>('accidents');
  const severe = accidents.filter((a) => a.severity >= 4).length;
  byTestId('summary-incidents').textContent = `${accidents.length}${severe > 0 ? ` · ${severe} severe` : ''}`;
  const stations = values<AirQualityStation>('airQuality');
  const worst = stations.reduce<AirQualityStation | null>(
    (w, s) => (w === null || s.aqi > w.aqi ? s : w),
    null,
  );
  const aqi = byTestId('summary-aqi');
  aqi.textContent = worst === null ? '—' : `${Math.round(worst.aqi)} ${worst.name}`;
  aqi.style.color = worst === null ? '' : AQI_COLOR[categoryOf(worst)];
  byTestId('summary-alerts').textContent = String(activeAlerts.size);
}

// ---------------------------------------------------------------------------------------------------------------
// Client events
// ---------------------------------------------------------------------------------------------------------------

const panelsOf: Record<string, Panel[]> = {
  cameras: ['map', 'summary'],
  weather: ['map', 'weather'],
  accidents: ['map', 'accidents', 'summary'],
  airQuality: ['map', 'airQuality', 'summary'],
};

for (const topic of DEFAULT_TOPICS) {
  client.subscribe(topic, (event) => {
    lastDataAt.set(topic, Date.now());
    if (event.type !== 'alert') markDirty(...(panelsOf[topic] ?? []));
  });
}

client.on('message', () => rate.tick(Date.now()));

client.on('alert', ({ alert: view, message }) => {
  // The SDK hands the alert typed (the protocol's `readAlert`): no re-parsing of its data here.
  const alert = toFeedAlert(view, message.timestamp);
  if (view.id !== undefined) {
    if (view.state === 'resolved') activeAlerts.delete(view.id);
    else activeAlerts.add(view.id);
  }
  alerts.unshift(alert);
  if (alerts.length > MAX_ALERTS) alerts.length = MAX_ALERTS;
  markDirty('alerts', 'summary');
});

client.on('state', ({ newState }: { newState: ConnectionState }) => {
  status.setState(newState);
  if (newState === 'connected') {
    const info = client.serverInfo;
    status.setNote(info ? `session ${info.clientId.slice(0, 8)} · protocol v${info.protocol}` : '');
  }
});

client.on('error', (error) => {
  if (client.connectionState !== 'connected') status.setNote(error.message);
});

// ---------------------------------------------------------------------------------------------------------------
// Once a second: clock, rate, ages, relative times.
// ---------------------------------------------------------------------------------------------------------------

let ticks = 0;
function tick(): void {
  const now = Date.now();
  byTestId('clock').textContent = formatClock(now);
  status.setRate(rate.rate(now));
  for (const topic of DEFAULT_TOPICS) {
    const at = lastDataAt.get(topic);
    status.setAge(topic, at === undefined ? undefined : now - at);
  }
  if (++ticks % 5 === 0) markDirty('accidents', 'weather');
}

status.setState(client.connectionState);
markDirty('map', 'weather', 'accidents', 'airQuality', 'alerts', 'summary');
tick();
setInterval(tick, 1000);
window.addEventListener('pagehide', () => client.close());
