import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

/**
 * The layer table of docs/architecture.md ("Layers"), enforced: each folder is an element, and an
 * import between two elements passes only if a policy below allows it. Imports inside one element
 * and imports of packages are not judged here.
 */
const layer = (type) => ({ element: { type } });
const layers = (...types) => ({ element: { types: { anyOf: types } } });
const known = { element: { isUnknown: false } };
const root = { file: { categories: 'root' } };
const spec = { file: { categories: 'spec' } };
const architecture = {
  files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.{ts,mjs}', 'web/src/**/*.{ts,tsx}'],
  plugins: { boundaries },
  settings: {
    'boundaries/root-path': import.meta.dirname,
    // Imports are written as the compiled .js; the TypeScript resolver finds the .ts behind them.
    'import/resolver': {
      typescript: {
        project: ['tsconfig.json', 'web/tsconfig.json', 'scripts/tsconfig.json'],
        noWarnOnMultipleProjects: true,
      },
    },
    // Files, not folders: the composition root, and specs colocated with the code they test.
    'boundaries/files': [
      {
        category: 'root',
        pattern: ['src/app.ts', 'src/app-storage.ts', 'src/app-jobs.ts', 'src/app.types.ts'],
      },
      { category: 'spec', pattern: '**/*.spec.ts' },
    ],
    'boundaries/elements': [
      { type: 'entry', pattern: 'src/cli', partialMatch: false },
      { type: 'routes', pattern: 'src/http/routes', partialMatch: false },
      { type: 'http', pattern: 'src/http', partialMatch: false },
      { type: 'services', pattern: 'src/services', partialMatch: false },
      { type: 'repositories', pattern: 'src/repositories', partialMatch: false },
      { type: 'adapters', pattern: 'src/adapters', partialMatch: false },
      { type: 'db', pattern: 'src/db', partialMatch: false },
      { type: 'crypto', pattern: 'src/crypto', partialMatch: false },
      { type: 'audio', pattern: 'src/audio', partialMatch: false },
      { type: 'config', pattern: 'src/config', partialMatch: false },
      { type: 'domain', pattern: 'src/domain', partialMatch: false },
      { type: 'web', pattern: 'web', partialMatch: false },
      { type: 'tooling', pattern: ['test', 'bench', 'scripts'], partialMatch: false },
    ],
  },
  rules: {
    'boundaries/dependencies': [
      'error',
      {
        default: 'disallow',
        // An import of a local file in no layer (a new folder, a file at the top of src/) fails
        // too, so the table is extended rather than bypassed.
        checkUnknownLocals: true,
        message:
          'Layer rule (docs/architecture.md, "Layers"): {{ from.element.type }} may not import {{#if to.element.type}}{{ to.element.type }}{{else}}a file in no layer{{/if}} ({{ dependency.source }})',
        policies: [
          { from: [layer('entry'), root, layer('tooling'), spec], allow: { to: [known, root] } },
          // The server is handed the services the composition root built, by type.
          { from: layers('routes', 'http'), allow: { to: root, dependency: { kind: 'type' } } },
          // Handlers are thin: they parse, call one service and shape the answer. A repository's
          // types may be named (a service's return type), its code may not be called.
          { from: layer('routes'), allow: { to: layers('http', 'services', 'domain', 'config') } },
          {
            from: layers('routes', 'http'),
            allow: { to: layers('repositories', 'adapters'), dependency: { kind: 'type' } },
          },
          { from: layer('http'), allow: { to: layers('routes', 'services', 'domain', 'config') } },
          // The edge plugins (rate limits, request logging) sit before any service: the table's
          // named exception, for these two adapters only and not for routes.
          {
            from: layer('http'),
            allow: {
              to: {
                element: {
                  type: 'adapters',
                  fileInternalPath: ['redis/rate-limit.adapter.ts', 'system/log-destination.adapter.ts'],
                },
              },
            },
          },
          {
            from: layer('services'),
            allow: { to: layers('repositories', 'adapters', 'db', 'crypto', 'audio', 'domain') },
          },
          // Services are given their settings by the composition root: they may name the config's
          // types, never read it.
          { from: layer('services'), allow: { to: layer('config'), dependency: { kind: 'type' } } },
          // audio/ is a pure building block like crypto/: the decoder adapters read WAV with it.
          // A SQL repository may keep its rows' files through an adapter (the archive's parts); an
          // adapter never reaches the database.
          {
            from: layer('repositories'),
            allow: { to: layers('adapters', 'db', 'crypto', 'audio', 'domain') },
          },
          { from: layer('adapters'), allow: { to: layers('crypto', 'audio', 'domain') } },
          { from: layers('db', 'crypto', 'audio', 'config'), allow: { to: layer('domain') } },
          // The config parse checks the master keyring's format, so a bad key is named at start
          // with every other bad variable: the keyring parser, nothing else of crypto/.
          {
            from: layer('config'),
            allow: { to: { element: { type: 'crypto', fileInternalPath: 'keyring.ts' } } },
          },
          // domain imports nothing; web talks to the API over HTTP only.
        ],
      },
    ],
  },
};

/** Restated in each block that restricts properties: a later block's options replace an earlier one's. */
const processEnv = {
  object: 'process',
  property: 'env',
  message: 'Read the environment in src/config/ and pass the value in.',
};

export default tseslint.config(
  // web/src/api-schema.d.ts is generated from openapi.json (scripts/openapi.ts), not written.
  {
    ignores: [
      'dist/',
      'node_modules/',
      'sotto-data/',
      'coverage/',
      'web/dist/',
      'scratch/',
      'web/src/api-schema.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
      // Type-aware linting: each file is checked with the types of the tsconfig.json nearest to it
      // (tsconfig.json for src/, test/, bench/; web/tsconfig.json; scripts/tsconfig.json). The two
      // config files no tsconfig covers get a default project.
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js', 'web/vite.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the process) and
      // its ordering; a promise passed where a callback's result is ignored does the same.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // The environment is parsed once, in src/config/ (the CLI may read it too); everything else is
    // handed its settings.
    files: ['src/**/*.ts'],
    ignores: ['src/config/**', 'src/cli/**', 'src/**/*.spec.ts'],
    rules: {
      'no-restricted-properties': ['error', processEnv],
    },
  },
  {
    // One clock, injected (CONTRIBUTING.md): services ask the Clock they were given, so tests move
    // time instead of sleeping, and durations come from its monotonicMs().
    files: ['src/services/**/*.ts'],
    ignores: ['src/**/*.spec.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        processEnv,
        { object: 'Date', property: 'now', message: 'Ask the injected Clock (clock.now()).' },
        { object: 'performance', property: 'now', message: 'Ask the injected Clock (clock.monotonicMs()).' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'Ask the injected Clock (clock.now()).',
        },
      ],
    },
  },
  {
    // The CLI talks to a person on a terminal; tests and benches print their findings.
    files: ['src/cli/**', 'bench/**', 'scripts/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['web/src/**/*.{ts,tsx}'],
    ...reactHooks.configs.flat.recommended,
    rules: {
      ...reactHooks.configs.flat.recommended.rules,
      // A missing dependency is a stale value on screen: an error, not a hint. A deliberate
      // omission says why in an eslint-disable comment.
      'react-hooks/exhaustive-deps': 'error',
      // Three of the React Compiler's rules in `recommended` flag 30 places written before them
      // (state set at the start of a loading effect, refs read during render, Date.now() in a
      // useMemo). The panel does not use the compiler; they stay off until those places are
      // rewritten with the panel's browser specs to prove the behaviour is unchanged.
      'react-hooks/set-state-in-effect': 'off',
      'react-hooks/refs': 'off',
      'react-hooks/purity': 'off',
    },
  },
  architecture,
);
