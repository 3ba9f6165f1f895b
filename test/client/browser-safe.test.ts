/**
 * src/client is bundled for browsers: it may import only itself, the protocol and the topic model; no Node
 * built-ins, no packages. Checked on the sources and by bundling it for the browser platform; and the package
 * entry `citypulse/client` resolves to the compiled SDK once built.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';

const ROOT = process.cwd();
const CLIENT_DIR = join(ROOT, 'src', 'client');
const ALLOWED = /^(\.\/[\w-]+\.js|\.\.\/(protocol|shared)\/[\w-]+\.js)$/;

test('src/client imports nothing but itself, the protocol layer and the shared layer', () => {
  const files = readdirSync(CLIENT_DIR).filter((name) => name.endsWith('.ts'));
  assert.ok(files.length >= 5);
  for (const file of files) {
    const source = readFileSync(join(CLIENT_DIR, file), 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)[^;]*?from\s+'([^']+)'/gms)].map(
      (m) => m[1],
    );
    for (const specifier of specifiers)
      assert.match(specifier ?? '', ALLOWED, `${file} imports ${specifier}`);
  }
});

test('the SDK bundles for the browser platform', async () => {
  const result = await esbuild.build({
    entryPoints: [join(CLIENT_DIR, 'index.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    logLevel: 'silent',
  });
  assert.equal(result.errors.length, 0);
  const code = result.outputFiles[0]?.text ?? '';
  assert.ok(code.includes('createClient'));
  assert.doesNotMatch(code, /from\s*["']node:|require\(/);
});

test(
  'citypulse/client resolves to the built SDK with types',
  { skip: !existsSync(join(ROOT, 'dist', 'client', 'index.js')) && 'run `npm run build` first' },
  async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; import: string }>;
    };
    const entry = pkg.exports['./client'];
    assert.ok(entry);
    assert.ok(existsSync(join(ROOT, entry.types)), entry.types);
    // A computed specifier: the type-checker must not need dist/ (it may not be built yet).
    const specifier = 'citypulse/client';
    const sdk = (await import(specifier)) as Record<string, unknown>;
    for (const name of [
      'createClient',
      'CityPulseClient',
      'ClientError',
      'ClientErrorCode',
      'backoffDelay',
      'CloseCode',
    ]) {
      assert.ok(name in sdk, name);
    }
  },
);
