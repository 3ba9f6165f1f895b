/**
 * Issue 11 item 4: `citypulse --version` (and `-v`) prints the package version, read at run time from the
 * `package.json` above the running file, and exits 0 without serving. Run from the built `dist/app/cli.js` (as `npm`
 * links the `bin`) and from the sources; the lookup itself on a temporary package layout. The installed-tarball
 * case is in test/package-install.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { HELP, UsageError, parseServeArgs, readPackageVersion } from '../../src/app/cli-args.js';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

test('parseServeArgs: --version and -v ask to print the version; --help wins; unknown flags stay usage errors', () => {
  const table: Array<[string[], 'help' | 'version']> = [
    [['--version'], 'version'],
    [['-v'], 'version'],
    [['serve', '--version'], 'version'],
    [['serve', '-v', '--port', '1'], 'version'],
    [['--help', '--version'], 'help'],
    [['-v', '-h'], 'help'],
  ];
  for (const [argv, print] of table) {
    const parsed = parseServeArgs(argv, {});
    assert.ok(parsed.help, argv.join(' '));
    assert.equal(parsed.print, print, argv.join(' '));
  }
  assert.throws(() => parseServeArgs(['--versions'], {}), UsageError);
  assert.throws(() => parseServeArgs(['--version=1'], {}), UsageError);
  assert.equal(parseServeArgs([], {}).help, false);
  assert.match(HELP, /-v, --version/);
});

test('citypulse --version / -v print the package version and exit 0, from dist/ and from the sources', () => {
  assert.ok(existsSync('dist/app/cli.js'), 'dist/ is missing: run `npm run build` first');
  const runs: Array<[string, string[]]> = [
    ['dist --version', ['dist/app/cli.js', '--version']],
    ['dist -v', ['dist/app/cli.js', '-v']],
    ['dist serve -v', ['dist/app/cli.js', 'serve', '-v']],
    ['src --version', ['--import', 'tsx', 'src/app/cli.ts', '--version']],
  ];
  for (const [name, args] of runs) {
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0, `${name}: ${result.stderr}`);
    assert.equal(result.stdout, `${VERSION}\n`, name);
  }
  const bad = spawnSync(process.execPath, ['dist/app/cli.js', '--versionx'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(bad.status, 2, bad.stderr);
});

test('readPackageVersion finds the nearest package.json with a version above the file, within a bound', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'citypulse-version-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const pkg = join(root, 'node_modules', 'citypulse');
  mkdirSync(join(pkg, 'dist', 'app'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'outer', version: '9.9.9' }));
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'citypulse', version: '1.2.3-rc.1' }));
  const file = join(pkg, 'dist', 'app', 'cli.js');
  assert.equal(readPackageVersion(pathToFileURL(file)), '1.2.3-rc.1');
  assert.equal(readPackageVersion(pathToFileURL(file).href), '1.2.3-rc.1');
  assert.equal(readPackageVersion(file), '1.2.3-rc.1');
  // A package.json without a version is climbed past.
  writeFileSync(join(pkg, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
  assert.equal(readPackageVersion(file), '1.2.3-rc.1');
  // Nothing within the bound: an error, not a wrong answer.
  const deep = join(root, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
  mkdirSync(deep, { recursive: true });
  assert.throws(() => readPackageVersion(join(deep, 'cli.js')), /no package\.json/);
  assert.equal(readPackageVersion(), VERSION);
});
