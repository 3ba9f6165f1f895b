// Small numeric helpers for the benchmark: percentiles of latency samples and number formatting.

/**
 * Percentiles of the first `count` samples (microseconds), returned in milliseconds.
 * @param {Float64Array} samples
 * @param {number} count
 */
export function summarize(samples, count) {
  if (count === 0) return { count: 0, p50: null, p99: null, max: null, mean: null };
  const sorted = samples.slice(0, count).sort();
  const at = (q) => sorted[Math.min(count - 1, Math.floor(q * count))] / 1000;
  let sum = 0;
  for (let i = 0; i < count; i += 1) sum += sorted[i];
  return { count, p50: at(0.5), p99: at(0.99), max: sorted[count - 1] / 1000, mean: sum / count / 1000 };
}

/** Formats a number with thousands separators and `digits` decimals; '-' for null/NaN. */
export function fmt(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '-';
  return Number(value).toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Formats a ratio a/b as `12.3x`; '-' when either side is missing. */
export function ratio(a, b, digits = 1) {
  if (!a || !b) return '-';
  return `${(a / b).toFixed(digits)}x`;
}
