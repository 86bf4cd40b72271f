/**
 * `npm run bench -- --suite S ...`: suites with flags of their own run as their own script
 * (rq.ts, curation.ts); the rest go to main.ts.
 */
const STANDALONE: Record<string, string> = { rq: './rq', curation: './curation' };

function suiteOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--suite') return argv[i + 1];
    if (argv[i]!.startsWith('--suite=')) return argv[i]!.slice('--suite='.length);
  }
  return undefined;
}

const suite = suiteOf(process.argv.slice(2));
const standalone = suite === undefined ? undefined : STANDALONE[suite];
if (standalone) {
  // The suite script reads its own flags from process.argv; --suite is not one of them.
  process.argv = process.argv.filter((a, i, all) => a !== '--suite' && all[i - 1] !== '--suite' && !a.startsWith('--suite='));
  // require, not import(): module node16 keeps import() native, which needs file extensions.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(standalone);
} else {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./main');
}
