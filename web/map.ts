/**
 * A dependency-free city map: entities projected with Web Mercator onto the bounding box of everything shown,
 * drawn as SVG. Raster tiles are drawn under the markers when a tile URL template is given (`{z}/{x}/{y}`,
 * `{s}`), so the same projection serves both; without one the map shows a graticule and works offline.
 *
 * @module
 */
import { svg } from './dom.js';
import { assertNever } from '../src/protocol/index.js';

/** Kinds of markers, each with its own shape: the city topics' own, and `entity` for any other topic. */
export type MarkerKind = 'entity' | 'weather' | 'air' | 'camera' | 'accident';

/** Draw order of the kinds (later ones on top): generic layers below the city topics' markers. */
const KIND_ORDER: readonly MarkerKind[] = ['entity', 'weather', 'air', 'camera', 'accident'];

/** One thing on the map. */
export interface MapMarker {
  /** The topic (map layer) it belongs to. */
  readonly topic: string;
  readonly id: string;
  readonly kind: MarkerKind;
  readonly lat: number;
  readonly lon: number;
  /** Tooltip text. */
  readonly title: string;
  readonly color: string;
  /** Short text drawn on the marker (AQI value, temperature, a topic's icon). */
  readonly label?: string;
  /** Draw an attention ring (severe accident, unhealthy air). */
  readonly pulse?: boolean;
  /** Dimmed (an offline camera). */
  readonly muted?: boolean;
}

/** Options of {@link CityMap}. */
export interface CityMapOptions {
  /** Raster tile URL template, e.g. `https://tile.openstreetmap.org/{z}/{x}/{y}.png`. */
  readonly tiles?: string | null;
  /** Margin around the markers, in pixels. Default 36. */
  readonly paddingPx?: number;
}

const TILE_SIZE = 256;
const MAX_ZOOM = 18;
const MAX_TILES = 80;
const EARTH_CIRCUMFERENCE_M = 40_075_016.686;

/** Web Mercator: longitude/latitude to world coordinates in [0, 1]. */
export function mercator(lat: number, lon: number): { x: number; y: number } {
  const clamped = Math.max(-85.0511, Math.min(85.0511, lat));
  const phi = (clamped * Math.PI) / 180;
  return { x: (lon + 180) / 360, y: (1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2 };
}

/** World y back to latitude. */
function latitudeOf(y: number): number {
  const n = Math.PI - 2 * Math.PI * y;
  return (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
}

/** A fitted view: world -> pixel. */
export interface Viewport {
  readonly width: number;
  readonly height: number;
  /** Pixels per world unit. */
  readonly scale: number;
  readonly centerX: number;
  readonly centerY: number;
}

/** Fits the markers' bounding box into `width` x `height` minus padding. */
export function fitViewport(
  markers: readonly MapMarker[],
  width: number,
  height: number,
  paddingPx: number,
): Viewport {
  const points = markers
    .filter((m) => Number.isFinite(m.lat) && Number.isFinite(m.lon))
    .map((m) => mercator(m.lat, m.lon));
  if (points.length === 0) {
    return { width, height, scale: TILE_SIZE * 2, centerX: 0.5, centerY: 0.5 };
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const minY = Math.min(...ys);
  const maxY = Math.max(...ys);
  const usableW = Math.max(1, width - 2 * paddingPx);
  const usableH = Math.max(1, height - 2 * paddingPx);
  const maxScale = TILE_SIZE * Math.pow(2, 15);
  const scale = Math.min(
    maxScale,
    usableW / Math.max(maxX - minX, 1e-12),
    usableH / Math.max(maxY - minY, 1e-12),
  );
  return { width, height, scale, centerX: (minX + maxX) / 2, centerY: (minY + maxY) / 2 };
}

/** World coordinates to pixels of `view`. */
export function toPixel(view: Viewport, x: number, y: number): { px: number; py: number } {
  return {
    px: (x - view.centerX) * view.scale + view.width / 2,
    py: (y - view.centerY) * view.scale + view.height / 2,
  };
}

/** A "nice" graticule step (1, 2, 5 x 10^n degrees) giving about `target` lines over `span` degrees. */
function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

function decimalsOf(step: number): number {
  return Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
}

/** A marker element on the map and what it was drawn with (so an unchanged marker is not touched). */
interface DrawnMarker {
  readonly kind: MarkerKind;
  /** Everything of its look but position and title; a change re-creates the element. */
  readonly look: string;
  readonly element: SVGGElement;
  transform: string;
  title: string;
}

function lookOf(marker: MapMarker): string {
  return `${marker.color}|${marker.label ?? ''}|${marker.pulse === true}|${marker.muted === true}`;
}

/** The map panel. Call {@link CityMap.render} with the markers whenever they change. */
export class CityMap {
  readonly #host: HTMLElement;
  readonly #svg: SVGSVGElement;
  readonly #tiles: string | null;
  readonly #paddingPx: number;
  #markers: readonly MapMarker[] = [];
  readonly #observer: ResizeObserver | null;
  /** The marker layer, kept across draws: one group per kind, marker elements reused by topic and id. */
  readonly #markerLayer: SVGGElement;
  /** Background, tiles and graticule (under the markers); the scale bar (over them). */
  readonly #under: SVGGElement;
  readonly #over: SVGGElement;
  readonly #kindGroups = new Map<MarkerKind, SVGGElement>();
  readonly #elements = new Map<string, DrawnMarker>();
  /** The view the static layers were drawn for. */
  #viewKey = '';

  constructor(host: HTMLElement, options: CityMapOptions = {}) {
    this.#host = host;
    this.#tiles = options.tiles ?? null;
    this.#paddingPx = options.paddingPx ?? 36;
    this.#svg = svg('svg', {
      class: 'map-svg',
      'data-testid': 'map-svg',
      role: 'img',
      'aria-label': 'City map',
    });
    host.append(this.#svg);
    this.#markerLayer = svg('g', { class: 'map-markers' });
    this.#under = svg('g');
    this.#over = svg('g');
    this.#svg.append(this.#under, this.#markerLayer, this.#over);
    for (const kind of KIND_ORDER) {
      const group = svg('g', { 'data-kind': kind });
      this.#kindGroups.set(kind, group);
      this.#markerLayer.append(group);
    }
    this.#observer = typeof ResizeObserver === 'function' ? new ResizeObserver(() => this.#draw()) : null;
    this.#observer?.observe(host);
  }

  /** Replaces the markers and redraws. */
  render(markers: readonly MapMarker[]): void {
    this.#markers = markers;
    this.#draw();
  }

  #draw(): void {
    const width = Math.max(100, this.#host.clientWidth);
    const height = Math.max(100, this.#host.clientHeight);
    const view = fitViewport(this.#markers, width, height, this.#paddingPx);
    this.#placeMarkers(view);
    // The background, tiles, graticule and scale bar depend on the view only: redrawn when it moves.
    const viewKey = `${width}x${height}@${view.scale}:${view.centerX}:${view.centerY}:${this.#markers.length > 0}`;
    if (viewKey === this.#viewKey) return;
    this.#viewKey = viewKey;
    this.#svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.#svg.setAttribute('width', String(width));
    this.#svg.setAttribute('height', String(height));
    const under: SVGElement[] = [svg('rect', { class: 'map-bg', x: 0, y: 0, width, height })];
    // No tiles before there is something to fit: the empty view is the whole world, and its tiles would be fetched
    // only to be replaced by the city's a moment later.
    if (this.#tiles !== null && this.#markers.length > 0) under.push(this.#tileLayer(view, this.#tiles));
    under.push(this.#graticule(view));
    // The marker layer stays in place (moving it would restyle every marker).
    this.#under.replaceChildren(...under);
    this.#over.replaceChildren(...(this.#markers.length > 0 ? [this.#scaleBar(view)] : []));
  }

  #tileLayer(view: Viewport, template: string): SVGGElement {
    const layer = svg('g', { class: 'map-tiles', 'data-testid': 'map-tiles' });
    const zoom = Math.max(0, Math.min(MAX_ZOOM, Math.round(Math.log2(view.scale / TILE_SIZE))));
    const tiles = Math.pow(2, zoom);
    const tilePx = view.scale / tiles;
    const x0 = view.centerX - view.width / 2 / view.scale;
    const y0 = view.centerY - view.height / 2 / view.scale;
    const x1 = view.centerX + view.width / 2 / view.scale;
    const y1 = view.centerY + view.height / 2 / view.scale;
    const fromX = Math.floor(x0 * tiles);
    const toX = Math.floor(x1 * tiles);
    const fromY = Math.max(0, Math.floor(y0 * tiles));
    const toY = Math.min(tiles - 1, Math.floor(y1 * tiles));
    let count = 0;
    for (let ty = fromY; ty <= toY; ty++) {
      for (let tx = fromX; tx <= toX; tx++) {
        if (++count > MAX_TILES) return layer;
        const wrapped = ((tx % tiles) + tiles) % tiles;
        const href = template
          .replaceAll('{z}', String(zoom))
          .replaceAll('{x}', String(wrapped))
          .replaceAll('{y}', String(ty))
          .replaceAll('{s}', 'abc'[((tx + ty) % 3) | 0] ?? 'a');
        const { px, py } = toPixel(view, tx / tiles, ty / tiles);
        layer.append(
          svg('image', {
            href,
            x: px.toFixed(1),
            y: py.toFixed(1),
            width: (tilePx + 0.5).toFixed(1),
            height: (tilePx + 0.5).toFixed(1),
            preserveAspectRatio: 'none',
          }),
        );
      }
    }
    return layer;
  }

  #graticule(view: Viewport): SVGGElement {
    const layer = svg('g', { class: 'map-grid' });
    const west = (view.centerX - view.width / 2 / view.scale) * 360 - 180;
    const east = (view.centerX + view.width / 2 / view.scale) * 360 - 180;
    const north = latitudeOf(view.centerY - view.height / 2 / view.scale);
    const south = latitudeOf(view.centerY + view.height / 2 / view.scale);
    const lonStep = niceStep(east - west, 7);
    const latStep = niceStep(north - south, 5);
    for (let lon = Math.ceil(west / lonStep) * lonStep; lon <= east; lon += lonStep) {
      const { px } = toPixel(view, (lon + 180) / 360, 0);
      layer.append(svg('line', { x1: px.toFixed(1), y1: 0, x2: px.toFixed(1), y2: view.height }));
      // Labels along the bottom edge, clear of the latitude labels on the left and the scale bar on the right.
      if (px > 60 && px < view.width - 160) {
        layer.append(
          svg(
            'text',
            { x: (px + 4).toFixed(1), y: view.height - 8, class: 'map-grid-label' },
            `${lon.toFixed(decimalsOf(lonStep))}°`,
          ),
        );
      }
    }
    for (let lat = Math.ceil(south / latStep) * latStep; lat <= north; lat += latStep) {
      const { py } = toPixel(view, 0, mercator(lat, 0).y);
      layer.append(svg('line', { x1: 0, y1: py.toFixed(1), x2: view.width, y2: py.toFixed(1) }));
      if (py > 16 && py < view.height - 24) {
        layer.append(
          svg(
            'text',
            { x: 6, y: (py - 4).toFixed(1), class: 'map-grid-label' },
            `${lat.toFixed(decimalsOf(latStep))}°`,
          ),
        );
      }
    }
    return layer;
  }

  /** A scale bar in the bottom-right corner, about 120 px long, at the view's centre latitude. */
  #scaleBar(view: Viewport): SVGGElement {
    const lat = latitudeOf(view.centerY);
    const metresPerPx = (EARTH_CIRCUMFERENCE_M * Math.cos((lat * Math.PI) / 180)) / view.scale;
    const metres = niceStep(metresPerPx * 120, 1);
    const px = metres / metresPerPx;
    const x = view.width - 16 - px;
    const y = view.height - 14;
    const label = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
    return svg(
      'g',
      { class: 'map-scale', 'data-testid': 'map-scale' },
      svg('path', { d: `M${x.toFixed(1)} ${y - 5}v5h${px.toFixed(1)}v-5` }),
      svg('text', { x: (x + px / 2).toFixed(1), y: y - 8 }, label),
    );
  }

  /** Moves, updates, creates and removes marker elements so the layer shows exactly the current markers. */
  #placeMarkers(view: Viewport): void {
    const seen = new Set<string>();
    for (const marker of this.#markers) {
      if (!Number.isFinite(marker.lat) || !Number.isFinite(marker.lon)) continue;
      const key = `${marker.topic}\u0000${marker.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const { x, y } = mercator(marker.lat, marker.lon);
      const { px, py } = toPixel(view, x, y);
      const transform = `translate(${px.toFixed(1)} ${py.toFixed(1)})`;
      const look = lookOf(marker);
      let drawn = this.#elements.get(key);
      if (drawn !== undefined && (drawn.kind !== marker.kind || drawn.look !== look)) {
        drawn.element.remove();
        drawn = undefined;
      }
      if (drawn === undefined) {
        drawn = { kind: marker.kind, look, element: this.#marker(marker), transform: '', title: '' };
        this.#elements.set(key, drawn);
        this.#kindGroups.get(marker.kind)?.append(drawn.element);
      }
      if (drawn.transform !== transform) {
        drawn.element.setAttribute('transform', transform);
        drawn.transform = transform;
      }
      if (drawn.title !== marker.title) {
        const title = drawn.element.firstChild;
        if (title !== null) title.textContent = marker.title;
        drawn.title = marker.title;
      }
    }
    for (const [key, drawn] of this.#elements) {
      if (seen.has(key)) continue;
      drawn.element.remove();
      this.#elements.delete(key);
    }
  }

  #marker(marker: MapMarker): SVGGElement {
    const g = svg('g', {
      class: `marker marker-${marker.kind}${marker.muted ? ' is-muted' : ''}${marker.pulse ? ' is-pulsing' : ''}`,
      'data-testid': `marker-${marker.kind}`,
      'data-topic': marker.topic,
      'data-id': marker.id,
    });
    g.append(svg('title', {}, marker.title));
    switch (marker.kind) {
      case 'entity':
        if (marker.label === undefined) {
          g.append(svg('circle', { r: 6, fill: marker.color, class: 'shape' }));
        } else {
          g.append(
            svg('circle', { r: 10, fill: marker.color, class: 'shape' }),
            svg('text', { y: 4, class: 'marker-icon' }, marker.label),
          );
        }
        break;
      case 'camera':
        g.append(
          svg('rect', { x: -6, y: -6, width: 12, height: 12, rx: 3, fill: marker.color, class: 'shape' }),
          svg('circle', { r: 2.5, class: 'lens' }),
        );
        break;
      case 'accident':
        if (marker.pulse) g.append(svg('circle', { r: 12, class: 'pulse', stroke: marker.color }));
        g.append(
          svg('path', { d: 'M0 -11 L10 7 L-10 7 Z', fill: marker.color, class: 'shape' }),
          svg('text', { y: 5, class: 'marker-glyph' }, marker.label ?? '!'),
        );
        break;
      case 'air':
        if (marker.pulse) g.append(svg('circle', { r: 19, class: 'pulse', stroke: marker.color }));
        g.append(
          svg('circle', { r: 14, fill: marker.color, class: 'shape' }),
          svg('text', { y: 4, class: 'marker-value' }, marker.label ?? ''),
        );
        break;
      case 'weather':
        g.append(
          svg('rect', {
            x: -20,
            y: -10,
            width: 40,
            height: 20,
            rx: 10,
            class: 'shape weather-pill',
            stroke: marker.color,
          }),
          svg('text', { y: 4, class: 'marker-temp' }, marker.label ?? ''),
        );
        break;
      default:
        assertNever(marker.kind);
    }
    return g;
  }

  /** Stops watching the panel's size. */
  dispose(): void {
    this.#observer?.disconnect();
  }
}
