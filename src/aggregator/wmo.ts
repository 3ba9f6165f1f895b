/**
 * WMO weather interpretation codes (WW, as used by Open-Meteo's `weather_code`) and the short condition text
 * citypulse shows for them.
 *
 * @module
 */

/** Short human text for a WMO weather code: `clear`, `rain`, `snow`, ... (`unknown` for codes outside the table). */
export function wmoCondition(code: number): string {
  if (code === 0) return 'clear';
  if (code === 1 || code === 2) return 'partly cloudy';
  if (code === 3) return 'overcast';
  if (code === 45 || code === 48) return 'fog';
  if (code >= 51 && code <= 57) return 'drizzle';
  if ((code >= 61 && code <= 67) || (code >= 80 && code <= 82)) return 'rain';
  if ((code >= 71 && code <= 77) || code === 85 || code === 86) return 'snow';
  if (code >= 95 && code <= 99) return 'thunderstorm';
  return 'unknown';
}
