// Tiny SVG charts drawn by the benchmark itself (no dependency): a line chart of series over x values and a grouped
// bar chart. Readable at a glance: labelled axes, a legend, values on the bars, a note line for the run.

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const W = 820;
const H = 400;
const M = { top: 48, right: 270, bottom: 56, left: 80 };
/** Room left and right of the first and last x value of a line chart. */
const INSET = 30;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" upper bound and tick step for [0, max]. */
function niceScale(max) {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

function fmtTick(v) {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

function frame(title, note, yLabel, xLabel, body) {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${M.left}" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${M.left}" y="36" fill="#555">${esc(note)}</text>`,
    `<text x="18" y="${(M.top + H - M.bottom) / 2}" transform="rotate(-90 18 ${(M.top + H - M.bottom) / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

function yAxis(top, step) {
  const out = [];
  const plotH = H - M.top - M.bottom;
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = H - M.bottom - (v / top) * plotH;
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${fmtTick(v)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`,
  );
  return out;
}

function legend(names) {
  return names.flatMap((name, i) => [
    `<rect x="${W - M.right + 14}" y="${M.top + i * 20}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
    `<text x="${W - M.right + 32}" y="${M.top + i * 20 + 10}">${esc(name)}</text>`,
  ]);
}

/**
 * A line chart: x values (categorical, evenly spaced, e.g. publish rates) and one line per series.
 * @param {{ title: string, note: string, xLabel: string, yLabel: string, xs: number[],
 *   series: { name: string, values: (number | null)[] }[] }} spec
 */
export function lineChart(spec) {
  const max = Math.max(0, ...spec.series.flatMap((s) => s.values.filter((v) => v !== null)));
  const { top, step } = niceScale(max);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (i) =>
    M.left +
    INSET +
    (spec.xs.length === 1 ? (plotW - 2 * INSET) / 2 : (i / (spec.xs.length - 1)) * (plotW - 2 * INSET));
  const y = (v) => H - M.bottom - (v / top) * plotH;
  const body = [...yAxis(top, step)];
  spec.xs.forEach((v, i) =>
    body.push(`<text x="${x(i)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmtTick(v)}</text>`),
  );
  spec.series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const pts = s.values.map((v, i) => (v === null ? null : [x(i), y(v)])).filter((p) => p !== null);
    if (pts.length > 1)
      body.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => p.join(',')).join(' ')}"/>`,
      );
    for (const [px, py] of pts) body.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${color}"/>`);
  });
  body.push(...legend(spec.series.map((s) => s.name)));
  return frame(spec.title, spec.note, spec.yLabel, spec.xLabel, body);
}

/**
 * A grouped bar chart: one group per category, one bar per series, values written on the bars.
 * @param {{ title: string, note: string, xLabel: string, yLabel: string, categories: string[],
 *   series: { name: string, values: (number | null)[] }[] }} spec
 */
export function barChart(spec) {
  const max = Math.max(0, ...spec.series.flatMap((s) => s.values.filter((v) => v !== null)));
  const { top, step } = niceScale(max);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const groupW = plotW / Math.max(1, spec.categories.length);
  const barW = (groupW * 0.7) / Math.max(1, spec.series.length);
  const body = [...yAxis(top, step)];
  spec.categories.forEach((c, g) => {
    body.push(
      `<text x="${M.left + g * groupW + groupW / 2}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(c)}</text>`,
    );
    spec.series.forEach((s, k) => {
      const v = s.values[g];
      if (v === null || v === undefined) return;
      const bx = M.left + g * groupW + groupW * 0.15 + k * barW;
      const by = H - M.bottom - (v / top) * plotH;
      body.push(
        `<rect x="${bx}" y="${by}" width="${barW - 2}" height="${H - M.bottom - by}" fill="${COLORS[k % COLORS.length]}"/>`,
      );
      body.push(`<text x="${bx + barW / 2}" y="${by - 4}" text-anchor="middle">${fmtTick(v)}</text>`);
    });
  });
  body.push(...legend(spec.series.map((s) => s.name)));
  return frame(spec.title, spec.note, spec.yLabel, spec.xLabel, body);
}
