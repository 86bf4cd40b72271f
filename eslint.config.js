// Lint: typescript-eslint's recommended rules over the TypeScript sources.
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

// Runtime folders under workers/ (the Celery worker itself) and domain folders (what users run on it).
const RUNTIME = ['app', 'backends', 'canvas', 'cli', 'control', 'events', 'log', 'metrics', 'mongodb', 'pool', 'producer', 'protocol', 'redis', 'transports', 'worker'];
const DOMAIN = ['store', 'workflows', 'datasets', 'climate', 'jobs', 'rq', 'curation', 'tasks'];

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.venv-interop/', '.venv-sca/', '.cache/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The boundary between the runtime and the domain (docs/architecture.md): the runtime never
  // imports a domain folder; domain code reaches the runtime only through workers/index.ts.
  {
    files: RUNTIME.map((dir) => `workers/${dir}/**/*.ts`).concat(['workers/*.ts']),
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: `^(\\.\\./)+(${DOMAIN.join('|')})(/|$)`, message: 'the runtime must not import domain code' }] }],
    },
  },
  {
    files: DOMAIN.map((dir) => `workers/${dir}/**/*.ts`),
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: `^(\\.\\./)+(${RUNTIME.join('|')}|tls)(/|$)`, message: "domain code uses the runtime's public API: import from workers/index.ts (export what you need there)" }] }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
