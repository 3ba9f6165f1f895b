// Live fixtures of examples/feeds-server.mjs for `examples/transit.json`: a GTFS-Realtime VehiclePositions feed
// (protobuf built with gtfs-realtime-bindings; the vehicles move on every request, and a combined TripUpdate gives
// some of them a delay) and GBFS 2.3 and 3.0 trees (discovery, station_information, station_status and free
// vehicles) whose availability changes on every status request. Deterministic: no randomness.
import GtfsRealtimeBindings from 'gtfs-realtime-bindings';

const { FeedMessage } = GtfsRealtimeBindings.transit_realtime;

/** Two tram lines through central Amsterdam, as [lat, lon] waypoints. */
const ROUTES = [
  {
    id: '2',
    stops: [
      [52.3791, 4.9003],
      [52.3731, 4.8926],
      [52.3664, 4.8838],
      [52.3579, 4.8794],
      [52.3476, 4.8616],
    ],
  },
  {
    id: '13',
    stops: [
      [52.3779, 4.8986],
      [52.3762, 4.8842],
      [52.3741, 4.8688],
      [52.3763, 4.8476],
    ],
  },
];

const VEHICLES_PER_ROUTE = 4;

/** Position `t` (0..1) along a polyline, with the bearing of its segment. */
function along(stops, t) {
  const segments = stops.length - 1;
  const x = Math.min(segments - 1e-9, Math.max(0, t * segments));
  const i = Math.floor(x);
  const f = x - i;
  const [lat1, lon1] = stops[i];
  const [lat2, lon2] = stops[i + 1];
  const bearing = (Math.atan2(lon2 - lon1, lat2 - lat1) * 180) / Math.PI;
  return {
    lat: lat1 + (lat2 - lat1) * f,
    lon: lon1 + (lon2 - lon1) * f,
    bearing: (bearing + 360) % 360,
    stop: i + 1,
  };
}

/** The VehiclePositions feed after `step` requests. */
export function vehiclePositions(step, nowSec) {
  const entity = [];
  for (const route of ROUTES) {
    for (let n = 0; n < VEHICLES_PER_ROUTE; n++) {
      // A ping-pong walk along the line, each vehicle offset by a quarter.
      const phase = (((step * 0.01 + n / VEHICLES_PER_ROUTE) % 2) + 2) % 2;
      const t = phase <= 1 ? phase : 2 - phase;
      const at = along(route.stops, t);
      const id = `tram-${route.id}-${n + 1}`;
      const tripId = `${route.id}-${n + 1}-${phase <= 1 ? 'out' : 'back'}`;
      entity.push({
        id: `vp-${id}`,
        vehicle: {
          vehicle: { id, label: `Tram ${route.id}` },
          trip: { tripId, routeId: route.id },
          position: { latitude: at.lat, longitude: at.lon, bearing: at.bearing, speed: 8 + n },
          stopId: `${route.id}-stop-${at.stop}`,
          timestamp: nowSec,
        },
      });
      if (n % 2 === 0)
        entity.push({
          id: `tu-${id}`,
          tripUpdate: { trip: { tripId, routeId: route.id }, vehicle: { id }, delay: 30 * ((step + n) % 5) },
        });
    }
  }
  const message = FeedMessage.fromObject({
    header: { gtfsRealtimeVersion: '2.0', incrementality: 0, timestamp: nowSec },
    entity,
  });
  return Buffer.from(FeedMessage.encode(message).finish());
}

const STATIONS = [
  { id: 'cs', name: 'Centraal Station', lat: 52.3789, lon: 4.9005, capacity: 40 },
  { id: 'dam', name: 'Dam', lat: 52.373, lon: 4.8932, capacity: 20 },
  { id: 'leidseplein', name: 'Leidseplein', lat: 52.3641, lon: 4.8828, capacity: 24 },
  { id: 'museumplein', name: 'Museumplein', lat: 52.3579, lon: 4.8816, capacity: 30 },
  { id: 'waterlooplein', name: 'Waterlooplein', lat: 52.3676, lon: 4.9023, capacity: 18 },
];

/** The GBFS document `feed` of `version` ('2.3' | '3.0') after `step` status requests; undefined if unknown. */
export function gbfsDocument(version, feed, step, baseUrl, nowSec) {
  const v3 = version === '3.0';
  const lastUpdated = v3 ? new Date(nowSec * 1000).toISOString() : nowSec;
  const doc = (data, ttl = 0) => ({ last_updated: lastUpdated, ttl, version, data });
  const names = ['station_information', 'station_status', v3 ? 'vehicle_status' : 'free_bike_status'];
  switch (feed) {
    case 'gbfs': {
      const feeds = names.map((name) => ({ name, url: `${baseUrl}/gbfs/${version}/${name}.json` }));
      return doc(v3 ? { feeds } : { en: { feeds } });
    }
    case 'station_information':
      return doc(
        {
          stations: STATIONS.map((s) => ({
            station_id: s.id,
            name: v3 ? [{ text: s.name, language: 'en' }] : s.name,
            lat: s.lat,
            lon: s.lon,
            capacity: s.capacity,
          })),
        },
        60,
      );
    case 'station_status':
      return doc({
        stations: STATIONS.map((s, i) => {
          const bikes = Math.round((s.capacity / 2) * (1 + Math.sin((step + i * 2) / 3)));
          return {
            station_id: s.id,
            [v3 ? 'num_vehicles_available' : 'num_bikes_available']: bikes,
            num_docks_available: s.capacity - bikes,
            is_installed: true,
            is_renting: true,
            is_returning: true,
            last_reported: lastUpdated,
          };
        }),
      });
    case 'free_bike_status':
    case 'vehicle_status': {
      if ((feed === 'vehicle_status') !== v3) return undefined;
      const list = [0, 1, 2].map((n) => ({
        [v3 ? 'vehicle_id' : 'bike_id']: `ebike-${n + 1}`,
        lat: 52.37 + 0.004 * Math.sin((step + n * 7) / 10),
        lon: 4.89 + 0.006 * Math.cos((step + n * 7) / 10),
        is_reserved: false,
        is_disabled: false,
        vehicle_type_id: 'ebike',
        current_range_meters: 20000 - ((step * 100 + n * 3000) % 15000),
      }));
      return doc(v3 ? { vehicles: list } : { bikes: list });
    }
    default:
      return undefined;
  }
}
