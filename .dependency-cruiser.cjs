// @ts-check
/**
 * The layering rule of citypulse (docs/architecture.md), checked by `npm run depcheck` inside `npm test`.
 *
 * Layers, lowest first; each may import only the layers to its left:
 *
 *   protocol -> shared -> security -> gateway -> aggregator -> cluster -> adapters -> app
 *
 * `client/` (the SDK) may import only `protocol/` and `shared/`; `src/index.ts` (the package barrel) sits above all.
 */

/** The layers in import order: a folder may import its own layer and the ones before it. */
const LAYERS = ['protocol', 'shared', 'security', 'gateway', 'aggregator', 'cluster', 'adapters', 'app'];

/** One `forbidden` rule per layer: nothing to its right, and never the client SDK. */
const layerRules = LAYERS.map((layer, index) => {
  const above = [...LAYERS.slice(index + 1), 'client'];
  return {
    name: `layer-${layer}`,
    comment: `src/${layer}/ may import only ${LAYERS.slice(0, index + 1).join(', ')} (docs/architecture.md)`,
    severity: /** @type {const} */ ('error'),
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${above.join('|')})/` },
  };
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'client-only-protocol-and-shared',
      comment:
        'The client SDK runs in browsers and installs alone: it may import only protocol/ and shared/.',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client|protocol|shared)/' },
    },
    {
      name: 'src-files-live-in-a-layer',
      comment: 'Every source file lives in a layer folder (or is the package barrel src/index.ts).',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot:
          '^src/(index\\.ts$|(protocol|shared|security|gateway|aggregator|cluster|adapters|app|client)/)',
      },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'No module imports itself through others.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'No two folders import each other, directly or through others.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A source file nobody imports is dead code (entry points excepted).',
      severity: 'error',
      from: {
        orphan: true,
        path: '^src/',
        pathNot: ['^src/index\\.ts$', '^src/app/cli\\.ts$', '\\.d\\.ts$'],
      },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js'],
    },
  },
};
