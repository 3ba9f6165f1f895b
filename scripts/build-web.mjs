#!/usr/bin/env node
// Bundles the dashboard (web/) into dist/web/: app.js (esbuild, ESM, minified, with a source map), index.html,
// styles.css and the static assets. No CDN: everything the page needs is in that directory.
// Usage: node scripts/build-web.mjs [--outdir <dir>] [--watch]
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const webDir = join(root, 'web');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--outdir');
const outdir = outIndex >= 0 && args[outIndex + 1] ? resolve(args[outIndex + 1]) : join(root, 'dist', 'web');
const watch = args.includes('--watch');

/** Files copied as they are. */
const STATIC = new Set(['.html', '.css', '.svg', '.png', '.ico', '.webmanifest']);

function copyStatic() {
  mkdirSync(outdir, { recursive: true });
  for (const name of readdirSync(webDir)) {
    if (STATIC.has(extname(name))) copyFileSync(join(webDir, name), join(outdir, name));
  }
}

const options = {
  entryPoints: [join(webDir, 'app.ts')],
  outfile: join(outdir, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
};

copyStatic();
if (watch) {
  const context = await esbuild.context({
    ...options,
    plugins: [{ name: 'copy-static', setup: (build) => build.onEnd(() => copyStatic()) }],
  });
  await context.watch();
  console.log(`watching web/ -> ${outdir}`);
} else {
  const result = await esbuild.build({ ...options, metafile: true });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`dashboard built into ${outdir} (${(bytes / 1024).toFixed(1)} KiB)`);
}
