#!/usr/bin/env node
// Builds the standalone client SDK package (packages/client, published as @citypulse/client) into
// packages/client/dist/: index.js, one ESM bundle of src/client/index.ts with the protocol code it imports (esbuild,
// platform neutral, no dependencies), and its declarations (tsc, emitted under dist/types/ and re-exported by
// dist/index.d.ts). Copies the root LICENSE into the package. Fails when the bundle imports anything outside itself.
// Usage: node scripts/build-client.mjs
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = join(root, 'packages', 'client');
const outdir = join(pkgDir, 'dist');
const require = createRequire(import.meta.url);

const { name, version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(root, 'src', 'client', 'index.ts')],
  outfile: join(outdir, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  sourcemap: true,
  legalComments: 'inline',
  banner: { js: `/*! ${name} ${version} | MIT License, see LICENSE */` },
  logLevel: 'warning',
  metafile: true,
});
const external = Object.values(result.metafile.outputs).flatMap((output) =>
  output.imports.filter((entry) => entry.external).map((entry) => entry.path),
);
if (external.length > 0) {
  console.error(`the client bundle must be self-contained, but it imports: ${external.join(', ')}`);
  process.exit(1);
}

const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(pkgDir, 'tsconfig.json')],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
writeFileSync(
  join(outdir, 'index.d.ts'),
  "// The types of @citypulse/client: the declarations of the SDK's sources, under ./types/.\nexport * from './types/client/index.js';\n",
);
copyFileSync(join(root, 'LICENSE'), join(pkgDir, 'LICENSE'));

const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`client SDK built into ${outdir} (${(bytes / 1024).toFixed(1)} KiB with its source map)`);
