/**
 * Built-in city definitions for the simulator: real places with plausible coordinates, so a dashboard map of the
 * simulated data looks like the city.
 *
 * @module
 */

/** A place the simulator puts something. */
export interface SimulatedPlace {
  readonly id: string;
  readonly name: string;
  readonly lat: number;
  readonly lon: number;
}

/** A transit line the simulator runs vehicles on: a polyline of a few waypoints, driven end to end and back. */
export interface SimulatedRoute {
  /** Route id (`routeId` of the vehicles). */
  readonly id: string;
  /** Public name (`Tram 2`), the start of each vehicle's `label`. */
  readonly name: string;
  readonly mode: 'tram' | 'bus';
  /** Names of the two termini: `[first waypoint, last waypoint]` (the destination shown in `label`). */
  readonly termini: readonly [string, string];
  /** At least two points, in driving order. */
  readonly waypoints: readonly { readonly lat: number; readonly lon: number }[];
}

/** Everything the simulator needs to know about a city. */
export interface SimulatedCity {
  readonly name: string;
  /** Traffic cameras; `area` is the street or district watched. */
  readonly cameras: readonly (SimulatedPlace & { readonly area: string })[];
  /** Weather stations with their typical temperature (°C). */
  readonly weatherStations: readonly (SimulatedPlace & { readonly baseTemperatureC: number })[];
  /** Air-quality stations with their typical PM2.5 (µg/m³). */
  readonly airQualityStations: readonly (SimulatedPlace & { readonly basePm25: number })[];
  /** Roads where simulated accidents happen, each with a point on it. */
  readonly roads: readonly { readonly name: string; readonly lat: number; readonly lon: number }[];
  /** Transit lines of the simulated fleet (topic `transit`). */
  readonly transitRoutes: readonly SimulatedRoute[];
  /** Base of the simulated camera still URLs (`<base>/<camera id>.jpg?frame=N`). */
  readonly imageBaseUrl: string;
}

/** Amsterdam, the Netherlands. */
export const AMSTERDAM: SimulatedCity = {
  name: 'Amsterdam',
  imageBaseUrl: 'https://images.example.com/amsterdam',
  cameras: [
    { id: 'ams-cam-01', name: 'Dam Square', lat: 52.3731, lon: 4.8926, area: 'Dam' },
    { id: 'ams-cam-02', name: 'Centraal Station', lat: 52.3791, lon: 4.9003, area: 'Stationsplein' },
    { id: 'ams-cam-03', name: 'Leidseplein', lat: 52.3641, lon: 4.883, area: 'Leidseplein' },
    { id: 'ams-cam-04', name: 'Rembrandtplein', lat: 52.3661, lon: 4.8964, area: 'Rembrandtplein' },
    { id: 'ams-cam-05', name: 'Museumplein', lat: 52.3573, lon: 4.8815, area: 'Museumplein' },
    { id: 'ams-cam-06', name: 'Weesperplein', lat: 52.361, lon: 4.9075, area: 'Weesperstraat' },
    { id: 'ams-cam-07', name: 'IJtunnel South', lat: 52.378, lon: 4.912, area: 'IJtunnel' },
    { id: 'ams-cam-08', name: 'Amstel Station', lat: 52.3467, lon: 4.9178, area: 'Julianaplein' },
    { id: 'ams-cam-09', name: 'Sloterdijk', lat: 52.3889, lon: 4.8378, area: 'A10 West' },
    { id: 'ams-cam-10', name: 'Zuidas', lat: 52.3389, lon: 4.8722, area: 'A10 Zuid' },
    { id: 'ams-cam-11', name: 'Coenplein', lat: 52.41, lon: 4.901, area: 'A10 Noord' },
    { id: 'ams-cam-12', name: 'Johan Cruijff ArenA', lat: 52.3124, lon: 4.9442, area: 'Arena Boulevard' },
  ],
  weatherStations: [
    { id: 'ams-wx-schiphol', name: 'Schiphol', lat: 52.3086, lon: 4.7639, baseTemperatureC: 11.5 },
    { id: 'ams-wx-centrum', name: 'Amsterdam Centrum', lat: 52.3702, lon: 4.8952, baseTemperatureC: 12.5 },
    { id: 'ams-wx-noord', name: 'Amsterdam Noord', lat: 52.391, lon: 4.917, baseTemperatureC: 11.8 },
    { id: 'ams-wx-zuidoost', name: 'Amsterdam Zuidoost', lat: 52.317, lon: 4.956, baseTemperatureC: 12.0 },
  ],
  airQualityStations: [
    { id: 'ams-aq-vondelpark', name: 'Vondelpark', lat: 52.3599, lon: 4.8663, basePm25: 7 },
    { id: 'ams-aq-oude-schans', name: 'Oude Schans', lat: 52.3731, lon: 4.9052, basePm25: 9 },
    { id: 'ams-aq-stadhouderskade', name: 'Stadhouderskade', lat: 52.358, lon: 4.8906, basePm25: 12 },
    { id: 'ams-aq-haarlemmerweg', name: 'Haarlemmerweg', lat: 52.3849, lon: 4.8668, basePm25: 11 },
    { id: 'ams-aq-einsteinweg', name: 'Einsteinweg', lat: 52.3816, lon: 4.8459, basePm25: 14 },
    { id: 'ams-aq-jan-van-galen', name: 'Jan van Galenstraat', lat: 52.3737, lon: 4.847, basePm25: 10 },
    { id: 'ams-aq-kantershof', name: 'Kantershof', lat: 52.3203, lon: 4.9881, basePm25: 8 },
  ],
  roads: [
    { name: 'A10 Ring West', lat: 52.3755, lon: 4.8365 },
    { name: 'A10 Ring Zuid', lat: 52.3385, lon: 4.8805 },
    { name: 'A10 Ring Noord', lat: 52.4036, lon: 4.9271 },
    { name: 'A2', lat: 52.3103, lon: 4.9262 },
    { name: 'S100 Stadhouderskade', lat: 52.3601, lon: 4.8869 },
    { name: 'Wibautstraat', lat: 52.355, lon: 4.9115 },
    { name: 'Prins Hendrikkade', lat: 52.3765, lon: 4.9035 },
    { name: 'IJburglaan', lat: 52.3602, lon: 4.9782 },
    { name: 'Nassaukade', lat: 52.3712, lon: 4.8772 },
    { name: 'Piet Heinkade', lat: 52.3778, lon: 4.9223 },
    { name: 'Amstelveenseweg', lat: 52.3456, lon: 4.8592 },
  ],
  transitRoutes: [
    {
      id: 'ams-tram-2',
      name: 'Tram 2',
      mode: 'tram',
      termini: ['Centraal Station', 'Nieuw Sloten'],
      waypoints: [
        { lat: 52.3791, lon: 4.9003 },
        { lat: 52.3731, lon: 4.8926 },
        { lat: 52.3686, lon: 4.8896 },
        { lat: 52.3641, lon: 4.883 },
        { lat: 52.359, lon: 4.881 },
        { lat: 52.3528, lon: 4.8566 },
        { lat: 52.3455, lon: 4.8105 },
      ],
    },
    {
      id: 'ams-tram-5',
      name: 'Tram 5',
      mode: 'tram',
      termini: ['Centraal Station', 'Amstelveen Stadshart'],
      waypoints: [
        { lat: 52.3788, lon: 4.8995 },
        { lat: 52.3641, lon: 4.8833 },
        { lat: 52.3557, lon: 4.8795 },
        { lat: 52.339, lon: 4.8732 },
        { lat: 52.303, lon: 4.86 },
      ],
    },
    {
      id: 'ams-tram-14',
      name: 'Tram 14',
      mode: 'tram',
      termini: ['Flevopark', 'Slotermeer'],
      waypoints: [
        { lat: 52.36, lon: 4.95 },
        { lat: 52.361, lon: 4.9265 },
        { lat: 52.3672, lon: 4.9015 },
        { lat: 52.3731, lon: 4.8926 },
        { lat: 52.3752, lon: 4.8838 },
        { lat: 52.3788, lon: 4.8461 },
        { lat: 52.382, lon: 4.815 },
      ],
    },
    {
      id: 'ams-tram-26',
      name: 'Tram 26',
      mode: 'tram',
      termini: ['Centraal Station', 'IJburg'],
      waypoints: [
        { lat: 52.378, lon: 4.905 },
        { lat: 52.3778, lon: 4.9223 },
        { lat: 52.3685, lon: 4.957 },
        { lat: 52.3545, lon: 5.004 },
      ],
    },
    {
      id: 'ams-bus-22',
      name: 'Bus 22',
      mode: 'bus',
      termini: ['Muiderpoort Station', 'Station Sloterdijk'],
      waypoints: [
        { lat: 52.3603, lon: 4.9318 },
        { lat: 52.3662, lon: 4.916 },
        { lat: 52.378, lon: 4.899 },
        { lat: 52.3838, lon: 4.8815 },
        { lat: 52.389, lon: 4.872 },
        { lat: 52.3889, lon: 4.8378 },
      ],
    },
    {
      id: 'ams-bus-48',
      name: 'Bus 48',
      mode: 'bus',
      termini: ['Centraal Station', 'Borneo-eiland'],
      waypoints: [
        { lat: 52.3795, lon: 4.9015 },
        { lat: 52.3768, lon: 4.9131 },
        { lat: 52.3762, lon: 4.9297 },
        { lat: 52.3735, lon: 4.9425 },
      ],
    },
  ],
};

/** Built-in cities by lowercase name. */
export const CITIES: Readonly<Record<string, SimulatedCity>> = { amsterdam: AMSTERDAM };
