/**
 * US EPA Air Quality Index from pollutant concentrations (the piecewise-linear breakpoint formula of the EPA's
 * "Technical Assistance Document for the Reporting of Daily Air Quality", PM2.5 table as revised in 2024).
 *
 * @module
 */
import { aqiCategory } from '../protocol/topics.js';
import type { AqiCategory } from '../protocol/topics.js';

/** One row of a breakpoint table: concentrations `cLow..cHigh` map linearly onto AQI `iLow..iHigh`. */
interface Breakpoint {
  readonly cLow: number;
  readonly cHigh: number;
  readonly iLow: number;
  readonly iHigh: number;
}

/** PM2.5 (24-hour, µg/m³), EPA 2024 revision. Concentrations are truncated to one decimal first. */
const PM25_BREAKPOINTS: readonly Breakpoint[] = [
  { cLow: 0.0, cHigh: 9.0, iLow: 0, iHigh: 50 },
  { cLow: 9.1, cHigh: 35.4, iLow: 51, iHigh: 100 },
  { cLow: 35.5, cHigh: 55.4, iLow: 101, iHigh: 150 },
  { cLow: 55.5, cHigh: 125.4, iLow: 151, iHigh: 200 },
  { cLow: 125.5, cHigh: 225.4, iLow: 201, iHigh: 300 },
  { cLow: 225.5, cHigh: 325.4, iLow: 301, iHigh: 500 },
];

/** PM10 (24-hour, µg/m³). Concentrations are truncated to an integer first. */
const PM10_BREAKPOINTS: readonly Breakpoint[] = [
  { cLow: 0, cHigh: 54, iLow: 0, iHigh: 50 },
  { cLow: 55, cHigh: 154, iLow: 51, iHigh: 100 },
  { cLow: 155, cHigh: 254, iLow: 101, iHigh: 150 },
  { cLow: 255, cHigh: 354, iLow: 151, iHigh: 200 },
  { cLow: 355, cHigh: 424, iLow: 201, iHigh: 300 },
  { cLow: 425, cHigh: 604, iLow: 301, iHigh: 500 },
];

/** The highest AQI value; concentrations beyond the last breakpoint are reported as this. */
export const MAX_AQI = 500;

function fromTable(table: readonly Breakpoint[], concentration: number): number {
  for (const bp of table) {
    if (concentration <= bp.cHigh) {
      const clamped = Math.max(concentration, bp.cLow);
      return Math.round(((bp.iHigh - bp.iLow) / (bp.cHigh - bp.cLow)) * (clamped - bp.cLow) + bp.iLow);
    }
  }
  return MAX_AQI;
}

/**
 * AQI for a PM2.5 concentration in µg/m³, or `null` when the value is not a finite, non-negative number.
 * Example: 12.0 -> 58 (moderate).
 */
export function pm25ToAqi(pm25: number): number | null {
  if (!Number.isFinite(pm25) || pm25 < 0) return null;
  return fromTable(PM25_BREAKPOINTS, Math.floor(pm25 * 10) / 10);
}

/** AQI for a PM10 concentration in µg/m³, or `null` when the value is not a finite, non-negative number. */
export function pm10ToAqi(pm10: number): number | null {
  if (!Number.isFinite(pm10) || pm10 < 0) return null;
  return fromTable(PM10_BREAKPOINTS, Math.floor(pm10));
}

/**
 * The overall AQI of a station: the highest sub-index of the pollutants given (PM2.5, PM10), with its category.
 * `null` when neither concentration is usable.
 */
export function stationAqi(pollutants: {
  pm25?: number;
  pm10?: number;
}): { aqi: number; category: AqiCategory } | null {
  const indices = [
    pollutants.pm25 === undefined ? null : pm25ToAqi(pollutants.pm25),
    pollutants.pm10 === undefined ? null : pm10ToAqi(pollutants.pm10),
  ].filter((v): v is number => v !== null);
  if (indices.length === 0) return null;
  const aqi = Math.max(...indices);
  return { aqi, category: aqiCategory(aqi) };
}
