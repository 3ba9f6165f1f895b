/**
 * Issue 11 item 4: both packages as a user installs them. `npm pack` the root package (`citypulse`) and the client
 * SDK (`@citypulse/client`, packages/client) from the built tree, install the tarballs into fresh projects in a
 * temporary directory, and use them as a user would:
 * - the SDK alone: its `package.json` declares no dependencies and `node_modules` holds nothing but it; it imports
 *   in plain Node (ESM), type-checks with `tsc` (no DOM, no Node types, `skipLibCheck` off), and converges on a real
 *   server on port 0;
 * - both tarballs together (the root one takes its dependencies from the npm cache, `--prefer-offline`): the
 *   `citypulse`, `citypulse/client` and `citypulse/protocol` entry points and the SDK import and type-check, a
 *   server started from the installed package serves both SDK copies, and the installed `citypulse --version`
 *   prints the version.
 * Packs run with --ignore-scripts (no rebuild under concurrent tests); `npm test` builds first. Every child process
 * is bounded in time; the temporary projects are removed afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { createServer } from '../src/index.js';

const ROOT = process.cwd();
const CLIENT_DIR = join(ROOT, 'packages', 'client');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** Bound of one npm, tsc or node child process. */
const CHILD_TIMEOUT_MS = 120_000;

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  bundleDependencies?: unknown;
}

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/**
 * The environment of a child npm: without the `npm_*` variables of the `npm test` that may be running us (they
 * would point the child at this repository's prefix and config), but with the same cache.
 */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) env[key] = value;
  }
  const cache = process.env.npm_config_cache;
  return {
    ...env,
    ...(cache === undefined ? {} : { npm_config_cache: cache }),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

/**
 * Runs a command to its end (asynchronously, so a server in this process keeps serving), killed after
 * {@link CHILD_TIMEOUT_MS}; fails the test with its output unless it exits 0. Resolves with its stdout.
 */
async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = childEnv(),
): Promise<string> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  assert.equal(
    code,
    0,
    `${command} ${args.join(' ')} (in ${cwd}) ended with ${code ?? signal}:\n${stderr}\n${stdout}`,
  );
  return stdout;
}

/** `npm pack` of the package in `dir` into `into`; returns the tarball's path and file list. */
async function pack(dir: string, into: string): Promise<{ tarball: string; files: Set<string> }> {
  const out = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', into], dir);
  const [result] = JSON.parse(out) as PackResult[];
  assert.ok(result, out);
  return { tarball: join(into, result.filename), files: new Set(result.files.map((f) => f.path)) };
}

/** A fresh ESM project in `dir`. */
function project(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
}

function tsconfig(dir: string, types: string[]): void {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        lib: ['ES2022'],
        types,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['check.ts'],
    }),
  );
}

/** Installed package directories under `node_modules` (scoped ones as `@scope/name`), dot entries left out. */
function installed(nodeModules: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      for (const inner of readdirSync(join(nodeModules, entry))) names.push(`${entry}/${inner}`);
    } else names.push(entry);
  }
  return names.sort();
}

/** Waits (bounded) for a non-empty `weather` state in a freshly created client, then closes it. */
const CONVERGE = `
async function converge(createClient, url, WebSocket) {
  const client = createClient({ url, WebSocket, topics: ['weather'] });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no weather state within 30 s')), 30000);
      client.subscribe('weather', () => {
        if (client.state('weather').size > 0) { clearTimeout(timer); resolve(); }
      });
    });
    return client.state('weather').size;
  } finally {
    client.close();
  }
}
`;

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'citypulse-install-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test(
  'npm pack of both packages: tarballs that install and import in fresh projects',
  { timeout: 600_000 },
  async (t) => {
    for (const built of ['dist/index.js', 'dist/app/cli.js', 'packages/client/dist/index.js']) {
      assert.ok(existsSync(join(ROOT, built)), `${built} is missing: run \`npm run build\` first`);
    }
    const rootPkg = readJson<PackageJson>(join(ROOT, 'package.json'));
    const clientPkg = readJson<PackageJson>(join(CLIENT_DIR, 'package.json'));
    assert.equal(clientPkg.version, rootPkg.version, 'the two packages are released together');
    const tmp = tempRoot(t);

    const client = await pack(CLIENT_DIR, tmp);
    const server = await pack(ROOT, tmp);

    await t.test('the tarballs hold the build, the README and the LICENSE, and no sources', () => {
      for (const path of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) {
        assert.ok(client.files.has(path), `client tarball lacks ${path}`);
      }
      for (const path of client.files) {
        assert.match(path, /^(package\.json|README\.md|LICENSE|dist\/.+)$/, `client tarball holds ${path}`);
      }
      for (const path of [
        'package.json',
        'README.md',
        'LICENSE',
        'dist/index.js',
        'dist/app/cli.js',
        'dist/client/index.js',
        'dist/web/index.html',
      ]) {
        assert.ok(server.files.has(path), `citypulse tarball lacks ${path}`);
      }
      for (const path of server.files) {
        assert.doesNotMatch(
          path,
          /^(src|test|packages|scripts|bench|node_modules)\//,
          `citypulse tarball holds ${path}`,
        );
      }
      assert.equal(
        readFileSync(join(CLIENT_DIR, 'LICENSE'), 'utf8'),
        readFileSync(join(ROOT, 'LICENSE'), 'utf8'),
      );
    });

    await t.test(
      'the SDK alone: no dependencies, nothing else installed; imports, type-checks, converges',
      async () => {
        const dir = join(tmp, 'sdk-only');
        project(dir, 'sdk-only');
        await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', client.tarball], dir);

        const pkg = readJson<PackageJson>(join(dir, 'node_modules', '@citypulse', 'client', 'package.json'));
        assert.equal(pkg.name, '@citypulse/client');
        for (const field of [
          'dependencies',
          'peerDependencies',
          'optionalDependencies',
          'bundleDependencies',
        ] as const)
          assert.equal(pkg[field], undefined, `the SDK declares ${field}`);
        assert.deepEqual(installed(join(dir, 'node_modules')), ['@citypulse/client']);
        const lock = readJson<{ packages: Record<string, unknown> }>(join(dir, 'package-lock.json'));
        assert.deepEqual(Object.keys(lock.packages).sort(), ['', 'node_modules/@citypulse/client']);

        writeFileSync(
          join(dir, 'check.ts'),
          `import { createClient, ClientErrorCode, CloseCode, isRetryableClose } from '@citypulse/client';
import type { Accident, ConnectionState, ClientOptions } from '@citypulse/client';

const options: ClientOptions = { url: 'ws://127.0.0.1:1/ws', topics: ['accidents'] };
const client = createClient(options);
const state: ConnectionState = client.connectionState;
const accident: Accident | undefined = client.state('accidents').get('a1');
const severity: number | undefined = accident?.severity;
// @ts-expect-error an Accident has no such field: the types are real, not any
void accident?.noSuchField;
const retry: boolean = isRetryableClose(CloseCode.Normal);
const code: string = ClientErrorCode.Fatal;
export { state, severity, retry, code };
`,
        );
        tsconfig(dir, []);
        await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], dir);

        // Node 20 has no global WebSocket: the user brings one (here this repository's ws, from outside the project).
        const live = await createServer({
          port: 0,
          host: '127.0.0.1',
          source: 'simulator',
          simulatorIntervalMs: 50,
        });
        t.after(() => live.close());
        writeFileSync(
          join(dir, 'check.mjs'),
          `import * as sdk from '@citypulse/client';
const { WebSocket } = await import(process.env.WS_MODULE);
${CONVERGE}
const names = ['createClient', 'CityPulseClient', 'ClientError', 'ClientErrorCode', 'CloseCode', 'ErrorCode',
  'ServerMessageType', 'isRetryableClose', 'aqiCategory', 'backoffDelay', 'TopicStore', 'buildConnectUrl'];
const size = await converge(sdk.createClient, process.env.WS_URL, WebSocket);
console.log(JSON.stringify({ missing: names.filter((n) => sdk[n] === undefined), converged: size > 0 }));
`,
        );
        const out = await run(
          process.execPath,
          ['check.mjs'],
          dir,
          childEnv({
            WS_URL: live.wsUrl,
            WS_MODULE: pathToFileURL(join(ROOT, 'node_modules', 'ws', 'wrapper.mjs')).href,
          }),
        );
        assert.deepEqual(JSON.parse(out.trim().split('\n').pop() ?? '{}'), { missing: [], converged: true });
        await live.close();
      },
    );

    await t.test(
      'both packages together: entry points import and type-check, a server from the tarball serves the SDKs, --version',
      async () => {
        const dir = join(tmp, 'app');
        project(dir, 'app');
        const typesNode = readJson<PackageJson>(
          join(ROOT, 'node_modules', '@types', 'node', 'package.json'),
        ).version;
        const typesWs = readJson<PackageJson>(
          join(ROOT, 'node_modules', '@types', 'ws', 'package.json'),
        ).version;
        await run(
          'npm',
          [
            'install',
            '--prefer-offline',
            '--no-audit',
            '--no-fund',
            server.tarball,
            client.tarball,
            `@types/node@${typesNode}`,
            `@types/ws@${typesWs}`,
          ],
          dir,
        );
        const names = installed(join(dir, 'node_modules'));
        for (const name of ['citypulse', '@citypulse/client', 'ws', 'pino', 'ioredis'])
          assert.ok(names.includes(name), `${name} not installed`);
        assert.ok(
          !names.includes('typescript') && !names.includes('esbuild'),
          'dev dependencies were installed',
        );

        writeFileSync(
          join(dir, 'check.ts'),
          `import { createServer, WebSocketService, type CityPulseServer } from 'citypulse';
import { createClient as createBundledClient } from 'citypulse/client';
import { PROTOCOL_VERSION, parseClientMessage } from 'citypulse/protocol';
import { createClient, type AirQualityStation } from '@citypulse/client';

const server: CityPulseServer = await createServer({ port: 0, host: '127.0.0.1' });
const url: string = server.wsUrl;
const a = createClient({ url, topics: ['airQuality'] });
const b = createBundledClient({ url, topics: ['airQuality'] });
const station: AirQualityStation | undefined = a.state('airQuality').get('s1') ?? b.state('airQuality').get('s1');
const aqi: number | undefined = station?.aqi;
// @ts-expect-error the server options are typed
await createServer({ port: 'eighty' });
const version: number = PROTOCOL_VERSION;
export { aqi, version, parseClientMessage, WebSocketService };
`,
        );
        tsconfig(dir, ['node']);
        await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], dir);

        writeFileSync(
          join(dir, 'check.mjs'),
          `import { createServer } from 'citypulse';
import { createClient as createBundledClient } from 'citypulse/client';
import { PROTOCOL_VERSION } from 'citypulse/protocol';
import { createClient } from '@citypulse/client';
import { WebSocket } from 'ws';
${CONVERGE}
const server = await createServer({ port: 0, host: '127.0.0.1', source: 'simulator', simulatorIntervalMs: 50 });
try {
  const sizes = [await converge(createClient, server.wsUrl, WebSocket), await converge(createBundledClient, server.wsUrl, WebSocket)];
  console.log(JSON.stringify({ protocol: PROTOCOL_VERSION, converged: sizes.every((n) => n > 0) }));
} finally {
  await server.close();
}
`,
        );
        const out = await run(process.execPath, ['check.mjs'], dir);
        assert.deepEqual(JSON.parse(out.trim().split('\n').pop() ?? '{}'), { protocol: 1, converged: true });

        const bin = join(dir, 'node_modules', '.bin', 'citypulse');
        assert.equal(await run(bin, ['--version'], dir), `${rootPkg.version}\n`);
        assert.equal(await run(bin, ['-v'], dir), `${rootPkg.version}\n`);
      },
    );
  },
);

test('prepare (git installs) builds only when a build output is missing, and never fails an install without the tools', async (t) => {
  const prepare = join(ROOT, 'scripts', 'prepare.mjs');
  assert.equal((await run(process.execPath, [prepare, '--dry-run'], ROOT)).trim(), 'present');
  const dir = tempRoot(t);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bare', version: '1.0.0' }));
  const outputs = [
    'dist/index.js',
    'dist/index.d.ts',
    'dist/app/cli.js',
    'dist/client/index.js',
    'dist/web/app.js',
    'dist/web/index.html',
    'packages/client/dist/index.js',
    'packages/client/dist/index.d.ts',
  ];
  const dryRun = async (): Promise<string> =>
    (await run(process.execPath, [prepare, '--dry-run', '--root', dir], dir)).trim();
  assert.equal(await dryRun(), `missing: ${outputs.join(', ')}`);
  for (const path of outputs) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), '');
  }
  assert.equal(await dryRun(), 'present');
  for (const path of outputs) {
    rmSync(join(dir, path));
    assert.equal(await dryRun(), `missing: ${path}`);
    writeFileSync(join(dir, path), '');
  }
  // Something missing and no typescript/esbuild to build it with (an install with --omit=dev): a warning, exit 0.
  rmSync(join(dir, 'dist'), { recursive: true });
  const child = spawn(process.execPath, [prepare, '--root', dir], { cwd: dir, env: childEnv() });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, stderr);
  assert.match(stderr, /build tools are not installed \(typescript, esbuild\)/);
  assert.equal(existsSync(join(dir, 'dist')), false);
});
