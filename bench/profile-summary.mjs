#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`, see `bench/run.mjs --cpu-prof`): top functions by self time
// and by inclusive time. Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(1);
}
const topIdx = process.argv.indexOf('--top');
const top = topIdx > 0 ? Number(process.argv[topIdx + 1]) : 25;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node from the sample deltas.
const selfUs = new Map();
let total = 0;
for (let i = 0; i < profile.samples.length; i += 1) {
  const dt = profile.timeDeltas[i] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  total += dt;
}
const key = (n) => {
  const f = n.callFrame;
  const url = f.url ? relative(process.cwd(), f.url.replace(/^file:\/\//, '')) : '';
  return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
};
const self = new Map();
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const n = nodes.get(id);
  self.set(key(n), (self.get(key(n)) ?? 0) + us);
  // Inclusive: charge every distinct function on the stack once.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key(nodes.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const print = (title, map) => {
  console.log(`\n${title} (of ${(total / 1e6).toFixed(2)} s sampled)`);
  console.log('|  % | ms | function |\n|---:|---:|---|');
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`| ${((us / total) * 100).toFixed(1)} | ${(us / 1000).toFixed(0)} | \`${k}\` |`);
  }
};
print('Self time', self);
print('Inclusive time', inclusive);
