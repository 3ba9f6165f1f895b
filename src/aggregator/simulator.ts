/**
 * The embedded default source: a seeded simulation of a city's cameras, weather, accidents and air quality, and on
 * request (topic `transit`) a fleet of transit vehicles driving the city's routes (`simulator-transit.ts`).
 * Deterministic for a seed (no `Math.random`); only timestamps (and the fleet's movement) depend on the clock.
 *
 * Every tick it reports each topic's complete view; only a subset of entities actually changes per tick (camera
 * stills refresh, a station or two drift, accidents appear and clear), so the aggregator publishes small UPDATEs.
 *
 * @module
 */
import type { Accident, AirQualityStation, Camera, Severity, WeatherReading } from '../protocol/topics.js';
import { stationAqi } from './aqi.js';
import { AMSTERDAM, CITIES } from './cities.js';
import type { SimulatedCity } from './cities.js';
import { createRandom, pick, randomInt } from './prng.js';
import type { Random } from './prng.js';
import type { Source, SourceContext } from './source.js';
import { DEFAULT_VEHICLES, TransitSimulation } from './simulator-transit.js';
import { wmoCondition } from './wmo.js';

/** Options of {@link createSimulator}. */
export interface SimulatorOptions {
  /** Source name (and `Entity.source`). Default `simulator`. */
  readonly name?: string;
  /** PRNG seed. Default 1. */
  readonly seed?: number;
  /** Tick interval (ms). Default 1000. */
  readonly intervalMs?: number;
  /** A built-in city name (`amsterdam`) or a city definition. Default Amsterdam. */
  readonly city?: string | SimulatedCity;
  /** Clock for timestamps. Default: the aggregator's clock. */
  readonly now?: () => number;
  /** Most accidents open at once. Default 6. */
  readonly maxAccidents?: number;
  /**
   * The topics to report (e.g. leave `accidents` to a real feed). Default: the four city topics
   * ({@link DEFAULT_SIMULATOR_TOPICS}); `transit` runs the fleet.
   */
  readonly topics?: readonly SimulatorTopic[];
  /** Transit fleet size (topic `transit`), 0..5000. Default 40. */
  readonly vehicles?: number;
}

/** A topic the simulator can report on. */
export type SimulatorTopic = (typeof SIMULATOR_TOPICS)[number];

/** Topics the simulator can report on. */
export const SIMULATOR_TOPICS = ['cameras', 'weather', 'accidents', 'airQuality', 'transit'] as const;

/** Topics the simulator reports on by default: the four city topics. */
export const DEFAULT_SIMULATOR_TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'] as const;

/** A city topic of {@link CitySimulation}. */
type CityTopic = (typeof DEFAULT_SIMULATOR_TOPICS)[number];

const ACCIDENT_KINDS = [
  { kind: 'collision', weight: 5, text: 'Collision involving two vehicles' },
  { kind: 'breakdown', weight: 4, text: 'Broken-down vehicle' },
  { kind: 'hazard', weight: 2, text: 'Debris on the road' },
  { kind: 'roadwork', weight: 2, text: 'Emergency roadworks' },
  { kind: 'closure', weight: 1, text: 'Road closed by police' },
] as const;

/** Weather codes the simulation moves between, with a rough relative likelihood. */
const WEATHER_CODES: readonly { code: number; weight: number }[] = [
  { code: 0, weight: 3 },
  { code: 2, weight: 4 },
  { code: 3, weight: 4 },
  { code: 45, weight: 1 },
  { code: 61, weight: 3 },
  { code: 80, weight: 2 },
  { code: 95, weight: 1 },
];

function weighted<T extends { weight: number }>(random: Random, items: readonly T[]): T {
  const total = items.reduce((sum, item) => sum + item.weight, 0);
  let roll = random() * total;
  for (const item of items) {
    roll -= item.weight;
    if (roll < 0) return item;
  }
  return items[items.length - 1] as T;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;
const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

/** Simulation state of one accident. */
interface OpenAccident {
  entity: Accident;
  /** Tick at which it clears. */
  clearsAt: number;
}

/** The simulation itself, separate from the timer so it can be stepped directly (tests do). */
export class CitySimulation {
  private readonly random: Random;
  private readonly cameras = new Map<string, Camera>();
  private readonly weather = new Map<string, WeatherReading>();
  private readonly air = new Map<string, AirQualityStation>();
  private readonly accidents = new Map<string, OpenAccident>();
  private readonly frames = new Map<string, number>();
  private tickCount = 0;
  private accidentCounter = 0;

  constructor(
    private readonly city: SimulatedCity,
    seed: number,
    private readonly sourceName: string,
    private readonly maxAccidents: number,
  ) {
    this.random = createRandom(seed);
  }

  /** Advances one tick and returns each topic's full entity list. */
  step(now: number): Record<CityTopic, unknown[]> {
    const at = new Date(now).toISOString();
    if (this.tickCount === 0) this.initialise(at);
    else {
      this.stepCameras(at);
      this.stepWeather(at);
      this.stepAir(at);
    }
    this.stepAccidents(at);
    this.tickCount += 1;
    return {
      cameras: [...this.cameras.values()],
      weather: [...this.weather.values()],
      accidents: [...this.accidents.values()].map((a) => a.entity),
      airQuality: [...this.air.values()],
    };
  }

  private initialise(at: string): void {
    for (const place of this.city.cameras) {
      this.frames.set(place.id, 1);
      this.cameras.set(place.id, {
        id: place.id,
        name: place.name,
        location: { lat: place.lat, lon: place.lon },
        status: this.random() < 0.08 ? 'offline' : 'online',
        imageUrl: `${this.city.imageBaseUrl}/${place.id}.jpg?frame=1`,
        area: place.area,
        updatedAt: at,
        source: this.sourceName,
      });
    }
    for (const place of this.city.weatherStations) {
      const code = weighted(this.random, WEATHER_CODES).code;
      this.weather.set(place.id, {
        id: place.id,
        name: place.name,
        location: { lat: place.lat, lon: place.lon },
        temperatureC: round1(place.baseTemperatureC + (this.random() - 0.5) * 3),
        humidityPct: Math.round(65 + this.random() * 25),
        windSpeedKmh: round1(8 + this.random() * 20),
        windDirectionDeg: Math.round(180 + this.random() * 90),
        precipitationMm: code >= 61 ? round1(0.2 + this.random() * 2) : 0,
        condition: wmoCondition(code),
        weatherCode: code,
        updatedAt: at,
        source: this.sourceName,
      });
    }
    for (const place of this.city.airQualityStations) {
      this.air.set(
        place.id,
        this.airReading(place.id, place.basePm25 * (0.7 + this.random() * 0.6), 18 + this.random() * 20, at),
      );
    }
  }

  private airReading(id: string, pm25: number, no2: number, at: string, o3?: number): AirQualityStation {
    const place = this.city.airQualityStations.find((p) => p.id === id);
    if (place === undefined) throw new Error(`unknown station ${id}`);
    const pm25r = round1(clamp(pm25, 0.5, 320));
    const pm10 = round1(pm25r * 1.6 + 3);
    const index = stationAqi({ pm25: pm25r, pm10 });
    if (index === null) throw new Error('unreachable: finite concentrations always give an AQI');
    return {
      id,
      name: place.name,
      location: { lat: place.lat, lon: place.lon },
      aqi: index.aqi,
      category: index.category,
      pm25: pm25r,
      pm10,
      no2: round1(clamp(no2, 1, 200)),
      o3: round1(clamp(o3 ?? 40 + this.random() * 30, 1, 240)),
      updatedAt: at,
      source: this.sourceName,
    };
  }

  private stepCameras(at: string): void {
    for (const [id, camera] of this.cameras) {
      const flip = camera.status === 'online' ? this.random() < 0.004 : this.random() < 0.05;
      if (flip) {
        this.cameras.set(id, {
          ...camera,
          status: camera.status === 'online' ? 'offline' : 'online',
          updatedAt: at,
        });
      }
    }
    // One or two online cameras publish a new still.
    const online = [...this.cameras.values()].filter((c) => c.status === 'online');
    const count = Math.min(online.length, randomInt(this.random, 1, 2));
    for (let i = 0; i < count; i++) {
      const camera = pick(this.random, online);
      const frame = (this.frames.get(camera.id) ?? 1) + 1;
      this.frames.set(camera.id, frame);
      const current = this.cameras.get(camera.id) ?? camera;
      this.cameras.set(camera.id, {
        ...current,
        imageUrl: `${this.city.imageBaseUrl}/${camera.id}.jpg?frame=${frame}`,
        updatedAt: at,
      });
    }
  }

  private stepWeather(at: string): void {
    const stations = this.city.weatherStations;
    const count = randomInt(this.random, 1, 2);
    for (let i = 0; i < count; i++) {
      const place = pick(this.random, stations);
      const current = this.weather.get(place.id);
      if (current === undefined) continue;
      let code = current.weatherCode ?? 0;
      if (this.random() < 0.03) code = weighted(this.random, WEATHER_CODES).code;
      const raining = code >= 51;
      const temperature =
        current.temperatureC +
        (place.baseTemperatureC - current.temperatureC) * 0.05 +
        (this.random() - 0.5) * 0.6;
      this.weather.set(place.id, {
        ...current,
        temperatureC: round1(clamp(temperature, -30, 45)),
        humidityPct: Math.round(
          clamp((current.humidityPct ?? 70) + (raining ? 1.5 : -0.5) + (this.random() - 0.5) * 4, 20, 100),
        ),
        windSpeedKmh: round1(clamp((current.windSpeedKmh ?? 10) + (this.random() - 0.5) * 3, 0, 120)),
        windDirectionDeg: Math.round(
          ((((current.windDirectionDeg ?? 220) + (this.random() - 0.5) * 20) % 360) + 360) % 360,
        ),
        precipitationMm: raining
          ? round1(clamp((current.precipitationMm ?? 0) + (this.random() - 0.4) * 0.8, 0.1, 40))
          : 0,
        condition: wmoCondition(code),
        weatherCode: code,
        updatedAt: at,
      });
    }
  }

  private stepAir(at: string): void {
    const count = randomInt(this.random, 2, 3);
    for (let i = 0; i < count; i++) {
      const place = pick(this.random, this.city.airQualityStations);
      const current = this.air.get(place.id);
      if (current === undefined) continue;
      let pm25 = current.pm25 ?? place.basePm25;
      pm25 += (place.basePm25 - pm25) * 0.08 + (this.random() - 0.5) * 2;
      // Now and then a pollution episode (traffic jam, fireworks, wildfire smoke) lifts a station sharply.
      if (this.random() < 0.01) pm25 += 40 + this.random() * 60;
      const no2 = (current.no2 ?? 25) + (this.random() - 0.5) * 3;
      const o3 = (current.o3 ?? 50) + (this.random() - 0.5) * 4;
      this.air.set(place.id, this.airReading(place.id, pm25, no2, at, o3));
    }
  }

  private stepAccidents(at: string): void {
    for (const [id, open] of this.accidents) {
      if (open.clearsAt <= this.tickCount) {
        this.accidents.delete(id);
        continue;
      }
      // Lanes reopen as the scene is cleared.
      const lanes = open.entity.lanesBlocked ?? 0;
      if (lanes > 0 && this.random() < 0.05) {
        open.entity = { ...open.entity, lanesBlocked: lanes - 1, updatedAt: at };
      }
    }
    if (this.accidents.size < this.maxAccidents && this.random() < (this.tickCount === 0 ? 1 : 0.12)) {
      const road = pick(this.random, this.city.roads);
      const kind = weighted(this.random, ACCIDENT_KINDS);
      const roll = this.random();
      const severity = (
        roll < 0.35 ? 1 : roll < 0.65 ? 2 : roll < 0.85 ? 3 : roll < 0.96 ? 4 : 5
      ) as Severity;
      this.accidentCounter += 1;
      const id = `${this.sourceName}-acc-${String(this.accidentCounter).padStart(4, '0')}`;
      const lanesBlocked = kind.kind === 'closure' ? 3 : Math.min(3, Math.max(0, severity - 1));
      this.accidents.set(id, {
        clearsAt: this.tickCount + randomInt(this.random, 30, 180),
        entity: {
          id,
          location: {
            lat: round6(road.lat + (this.random() - 0.5) * 0.006),
            lon: round6(road.lon + (this.random() - 0.5) * 0.01),
          },
          severity,
          description: `${kind.text} on ${road.name}`,
          kind: kind.kind,
          roadName: road.name,
          lanesBlocked,
          reportedAt: at,
          updatedAt: at,
          source: this.sourceName,
        },
      });
    }
  }
}

const round6 = (value: number): number => Math.round(value * 1e6) / 1e6;

/** Lifecycle of the simulator source. */
type SimulatorState = 'idle' | 'running' | 'stopped';

/**
 * Creates the simulator source. It reports on its topics (default: the four city topics), immediately on `start`
 * and then every `intervalMs`; each report is the topic's complete view.
 */
export function createSimulator(options: SimulatorOptions = {}): Source {
  const name = options.name ?? 'simulator';
  const intervalMs = Math.max(10, options.intervalMs ?? 1000);
  const city = resolveCity(options.city);
  const simulation = new CitySimulation(
    city,
    options.seed ?? 1,
    name,
    Math.max(0, options.maxAccidents ?? 6),
  );
  let state: SimulatorState = 'idle';
  let timer: ReturnType<typeof setInterval> | null = null;

  const topics: readonly SimulatorTopic[] = options.topics ?? DEFAULT_SIMULATOR_TOPICS;
  const fleet = topics.includes('transit')
    ? new TransitSimulation(city, options.seed ?? 1, name, options.vehicles ?? DEFAULT_VEHICLES)
    : null;
  const tick = (context: SourceContext): void => {
    const now = (options.now ?? context.now)();
    const lists = simulation.step(now);
    const vehicles = fleet?.step(now) ?? [];
    for (const topic of topics)
      context.emit({ topic, upserts: topic === 'transit' ? vehicles : lists[topic], complete: true });
  };

  return {
    name,
    kind: 'simulator',
    topics,
    start(context) {
      if (state !== 'idle') return;
      state = 'running';
      tick(context);
      timer = setInterval(() => tick(context), intervalMs);
    },
    async stop() {
      state = 'stopped';
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
}

function resolveCity(city: string | SimulatedCity | undefined): SimulatedCity {
  if (city === undefined) return AMSTERDAM;
  if (typeof city !== 'string') return city;
  const found = CITIES[city.toLowerCase()];
  if (found === undefined)
    throw new Error(`unknown city "${city}" (built in: ${Object.keys(CITIES).join(', ')})`);
  return found;
}
