#!/usr/bin/env node
// The `prepare` lifecycle script. npm runs it after `npm install` / `npm ci` in a checkout and, above all, when the
// package is installed from git (`npm install github:owner/citypulse`), where no dist/ is committed: then it builds
// dist/ (and the client SDK package) with `npm run build`. When every build output is already there it does
// nothing, so `npm pack` and repeated installs stay fast; `npm run build` (and `npm test`) always rebuild.
// Without the build tools (an install with --omit=dev) it warns and leaves dist/ missing instead of failing.
// Usage: node scripts/prepare.mjs [--dry-run] [--root <dir>]
//   --dry-run   print what is missing ("missing: a, b" or "present") and build nothing
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `npm run build` produces that the package entry points, the CLI, the dashboard and the SDK package need. */
const OUTPUTS = [
  'dist/index.js',
  'dist/index.d.ts',
  'dist/app/cli.js',
  'dist/client/index.js',
  'dist/web/app.js',
  'dist/web/index.html',
  'packages/client/dist/index.js',
  'packages/client/dist/index.d.ts',
];

const args = process.argv.slice(2);
const rootIndex = args.indexOf('--root');
const root =
  rootIndex >= 0 && args[rootIndex + 1]
    ? resolve(args[rootIndex + 1])
    : resolve(dirname(fileURLToPath(import.meta.url)), '..');
const missing = OUTPUTS.filter((path) => !existsSync(join(root, path)));

if (args.includes('--dry-run')) {
  console.log(missing.length === 0 ? 'present' : `missing: ${missing.join(', ')}`);
  process.exit(0);
}
if (missing.length === 0) process.exit(0);

const require = createRequire(join(root, 'package.json'));
const tools = ['typescript/package.json', 'esbuild/package.json'].filter((name) => {
  try {
    require.resolve(name);
    return false;
  } catch {
    return true;
  }
});
if (tools.length > 0) {
  console.warn(
    `citypulse prepare: ${missing[0]} is missing but the build tools are not installed ` +
      `(${tools.map((name) => name.split('/')[0]).join(', ')}); run \`npm install && npm run build\`.`,
  );
  process.exit(0);
}

console.log(`citypulse prepare: building (${missing[0]} is missing)`);
// Under npm, npm_execpath is the running npm's own CLI script: the same npm builds.
const npmCli = process.env.npm_execpath;
const build =
  npmCli !== undefined && npmCli.endsWith('.js')
    ? spawnSync(process.execPath, [npmCli, 'run', 'build'], { cwd: root, stdio: 'inherit' })
    : spawnSync('npm', ['run', 'build'], {
        cwd: root,
        stdio: 'inherit',
        shell: process.platform === 'win32',
      });
process.exit(build.status ?? 1);
