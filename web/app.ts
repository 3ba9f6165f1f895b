/**
 * The operations-room dashboard: one citypulse client (the SDK) subscribed to every topic the server lists, rendered
 * into the panels of index.html. The topics and their display hints come from `GET /api/topics` (the registry);
 * when that route is not there (an older server, or one that wants credentials) the dashboard takes the topics the
 * `CONNECTED` frame lists, with default hints. Each topic with a location is a map layer that can be switched off;
 * each topic without a panel of its own (weather, incidents and air quality have one) gets a list of its hinted
 * fields. Alerts already active when the page opens come with the snapshots. Query parameters: `?tiles=<url
 * template>` draws raster tiles under the map; `?ws=<url>` connects elsewhere than `ws(s)://<this host>/ws`.
 *
 * @module
 */
import { createClient } from '../src/client/index.js';
import type { ConnectionState } from '../src/client/index.js';
import { WS_PATH } from '../src/protocol/messages.js';
import { alertEffect } from '../src/protocol/alert-state.js';
import type { TopicInfo } from '../src/protocol/topic-definition.js';
import type {
  Accident,
  AirQualityStation,
  Camera,
  EntityBase,
  WeatherReading,
} from '../src/protocol/topics.js';
import { AlertFeed } from './alert-board.js';
import { byTestId } from './dom.js';
import { AQI_COLOR, AQI_LABEL, formatClock, severityColor } from './format.js';
import { LayerToggles } from './layers.js';
import { CityMap } from './map.js';
import type { MapMarker } from './map.js';
import { categoryOf, renderAccidents, renderAirQuality, renderAlerts, renderWeather } from './panels.js';
import { RateMeter, StatusBar } from './status.js';
import {
  displayName,
  fetchTopics,
  fieldLabel,
  formatValue,
  locationOf,
  readTopicsResponse,
  truncate,
} from './topic-info.js';
import { TopicLists } from './topic-lists.js';
import { assertNever } from '../src/protocol/index.js';
import { readEntityPath } from '../src/protocol/entity-path.js';

type Panel = 'map' | 'weather' | 'accidents' | 'airQuality' | 'alerts' | 'summary' | 'lists';

/** City topics drawn by panels of their own instead of a generic list. */
const OWN_PANELS: ReadonlySet<string> = new Set(['weather', 'accidents', 'airQuality']);

const params = new URLSearchParams(location.search);
const wsUrl =
  params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;

/** The http(s) origin of the WebSocket endpoint: where `GET /api/topics` is asked. */
function apiBaseOf(url: string): string {
  try {
    const parsed = new URL(url, location.href);
    parsed.protocol =
      parsed.protocol === 'wss:' ? 'https:' : parsed.protocol === 'ws:' ? 'http:' : parsed.protocol;
    return parsed.origin;
  } catch {
    return location.origin;
  }
}

const map = new CityMap(byTestId('map'), { tiles: params.get('tiles') });
const status = new StatusBar(byTestId('status-bar'));
const lists = new TopicLists(byTestId('topic-lists'));
const layers = new LayerToggles(byTestId('layer-toggles'), () => markDirty('map'));
const rate = new RateMeter(5000);
const lastDataAt = new Map<string, number>();
const feed = new AlertFeed();
/** The topics shown, in registry order. */
const topics = new Map<string, TopicInfo>();
/** Topics whose list is due for a render. */
const dirtyLists = new Set<string>();

// The registry first (one same-origin request, bounded in time); the client subscribes to what it lists.
const listed = await fetchTopics(apiBaseOf(wsUrl));

const client = createClient({
  url: wsUrl,
  topics: listed?.map((info) => info.name) ?? [],
  // An operations room wants the data back quickly: retry often, never give up.
  backoff: { initialMs: 250, maxMs: 5000, factor: 2 },
});

// ---------------------------------------------------------------------------------------------------------------
// Render scheduling: events mark panels dirty; one animation frame renders them (a busy topic costs one render
// per frame, however many frames arrive).
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
  return topics.has(topic) ? ([...client.state(topic).values()] as T[]) : [];
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
      renderAlerts(byTestId('alerts-feed'), feed.entries);
      break;
    case 'summary':
      renderSummary();
      break;
    case 'lists':
      for (const topic of dirtyLists) lists.render(topic, client.state(topic));
      dirtyLists.clear();
      break;
    default:
      assertNever(panel);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The map: the city topics' own markers, a generic marker (colour and icon of the hints) for any other topic.
// ---------------------------------------------------------------------------------------------------------------

function weatherMarkers(): MapMarker[] {
  return values<WeatherReading>('weather').flatMap((s) =>
    s.location
      ? [
          {
            topic: 'weather',
            id: s.id,
            kind: 'weather' as const,
            lat: s.location.lat,
            lon: s.location.lon,
            color: '#7dd3fc',
            label: `${Math.round(s.temperatureC)}°`,
            title: truncate(`${s.name}: ${s.temperatureC.toFixed(1)} °C, ${s.condition}`, 200),
          },
        ]
      : [],
  );
}

function airMarkers(): MapMarker[] {
  return values<AirQualityStation>('airQuality').flatMap((s) => {
    if (!s.location) return [];
    const category = categoryOf(s);
    return [
      {
        topic: 'airQuality',
        id: s.id,
        kind: 'air' as const,
        lat: s.location.lat,
        lon: s.location.lon,
        color: AQI_COLOR[category],
        label: String(Math.round(s.aqi)),
        pulse: s.aqi > 150,
        title: truncate(`${s.name}: AQI ${Math.round(s.aqi)} (${AQI_LABEL[category]})`, 200),
      },
    ];
  });
}

function cameraMarkers(): MapMarker[] {
  return values<Camera>('cameras').flatMap((c) =>
    c.location
      ? [
          {
            topic: 'cameras',
            id: c.id,
            kind: 'camera' as const,
            lat: c.location.lat,
            lon: c.location.lon,
            color: c.status === 'online' ? '#38bdf8' : c.status === 'offline' ? '#64748b' : '#f59e0b',
            muted: c.status === 'offline',
            title: truncate(`${c.name} (${c.status})${c.area ? ` · ${c.area}` : ''}`, 200),
          },
        ]
      : [],
  );
}

function accidentMarkers(): MapMarker[] {
  return values<Accident>('accidents').flatMap((a) =>
    a.location
      ? [
          {
            topic: 'accidents',
            id: a.id,
            kind: 'accident' as const,
            lat: a.location.lat,
            lon: a.location.lon,
            color: severityColor(a.severity),
            label: String(a.severity),
            pulse: a.severity >= 4,
            title: truncate(`S${a.severity} ${a.kind}: ${a.description}`, 200),
          },
        ]
      : [],
  );
}

/** The city topics' own marker builders. */
const OWN_MARKERS: Readonly<Record<string, () => MapMarker[]>> = {
  weather: weatherMarkers,
  airQuality: airMarkers,
  cameras: cameraMarkers,
  accidents: accidentMarkers,
};

/** Markers of any topic: at its location field, in its colour, its icon as the label, its hinted fields as title. */
function entityMarkers(info: TopicInfo): MapMarker[] {
  const markers: MapMarker[] = [];
  const { display } = info;
  for (const entity of client.state(info.name).values()) {
    const at = locationOf(info, entity);
    if (at === null) continue;
    const facts = display.fields.map(
      (f) => `${fieldLabel(f)}: ${formatValue(readEntityPath(entity, f.field), f.unit)}`,
    );
    markers.push({
      topic: info.name,
      id: entity.id,
      kind: 'entity',
      lat: at.lat,
      lon: at.lon,
      color: display.color,
      ...(display.icon === undefined ? {} : { label: display.icon }),
      title: truncate(
        [`${display.label}: ${displayName(entity as EntityBase & Record<string, unknown>)}`, ...facts].join(
          '\n',
        ),
        400,
      ),
    });
  }
  return markers;
}

function renderMap(): void {
  const markers: MapMarker[] = [];
  for (const info of topics.values()) {
    if (info.locationField === null || !layers.visible(info.name)) continue;
    const own = OWN_MARKERS[info.name];
    markers.push(...(own === undefined ? entityMarkers(info) : own()));
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
  aqi.textContent = worst === null ? '—' : truncate(`${Math.round(worst.aqi)} ${worst.name}`, 40);
  aqi.style.color = worst === null ? '' : AQI_COLOR[categoryOf(worst)];
  byTestId('summary-alerts').textContent = String(client.activeAlerts().length);
}

// ---------------------------------------------------------------------------------------------------------------
// Topics and client events
// ---------------------------------------------------------------------------------------------------------------

/** Panels a change of `topic` affects. */
function panelsOf(topic: string): Panel[] {
  switch (topic) {
    case 'weather':
      return ['map', 'weather'];
    case 'accidents':
      return ['map', 'accidents', 'summary'];
    case 'airQuality':
      return ['map', 'airQuality', 'summary'];
    case 'cameras':
      return ['map', 'summary', 'lists'];
    default:
      return ['map', 'lists'];
  }
}

/** Shows and subscribes to `added` (topics not shown yet), after those already shown. */
function addTopics(added: readonly TopicInfo[]): void {
  const fresh = added.filter((info) => !topics.has(info.name));
  if (fresh.length === 0) return;
  for (const info of fresh) topics.set(info.name, info);
  const all = [...topics.values()];
  layers.setTopics(all);
  lists.setTopics(all.filter((info) => !OWN_PANELS.has(info.name)));
  status.setTopics(all.map((info) => ({ name: info.name, label: info.display.label })));
  for (const info of fresh) {
    client.subscribe(info.name, (event) => {
      lastDataAt.set(info.name, Date.now());
      if (event.type === 'alert') return;
      if (lists.has(info.name)) dirtyLists.add(info.name);
      markDirty(...panelsOf(info.name));
    });
  }
  for (const info of all) if (lists.has(info.name)) dirtyLists.add(info.name);
  markDirty('map', 'lists', 'summary');
}

if (listed !== null) {
  addTopics(listed);
} else {
  // No registry route: every topic the server serves, with default hints.
  client.on('connected', (info) => {
    addTopics(readTopicsResponse({ topics: info.topics.map((name) => ({ name })) }) ?? []);
  });
}

client.on('message', () => rate.tick(Date.now()));

// The active alerts are the SDK's (the protocol's rule, seeded by every snapshot: alerts raised before this page
// opened are in it); the feed follows them.
client.on('snapshot', ({ topic, message }) => {
  feed.sync(topic, client.activeAlerts(topic), message.timestamp);
  markDirty('alerts', 'summary');
});

client.on('alert', ({ alert: view, message, topic }) => {
  // The SDK hands the alert typed (the protocol's `readAlert`): no re-parsing of its data here.
  const effect = alertEffect(message.data);
  if (topic !== undefined && effect !== null) feed.sync(topic, client.activeAlerts(topic), message.timestamp);
  if (topic === undefined || effect === null || !feed.shows(topic, effect.id)) {
    feed.note(view, message.timestamp, topic);
  }
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
  for (const topic of topics.keys()) {
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
