/**
 * The md5 part of `--suite workflows`: inspect_dataset's hashing (walkTree + md5File, the code the
 * task runs) against Python hashlib over the same tree, in MB/s, median of R interleaved runs.
 * Python runs twice: as Bioloop's utils.checksum reads (4 KiB chunks) and with 1 MiB chunks (the
 * chunk size Celeriac uses), so the comparison is fair to both. The tree is written once and read
 * once before timing, so every contender reads from the page cache: this measures hashing and
 * reading, not the disk.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { md5File, walkTree } from '../../workers/datasets/tree';
import { renderTable } from './peers';

export interface Md5BenchOptions {
  python: string;
  tempDir: string;
  /** Total MiB in the tree (default 256), as files of fileMiB each (default 16). */
  totalMiB: number;
  fileMiB: number;
  repeat: number;
}

const PY_HASH = `
import hashlib, os, sys, time, json
root, chunk = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter(); total = 0
for d, _, files in os.walk(root):
    for f in sorted(files):
        m = hashlib.md5()
        with open(os.path.join(d, f), 'rb') as fh:
            for block in iter(lambda: fh.read(chunk), b''):
                m.update(block); total += len(block)
        m.hexdigest()
print(json.dumps({'bytes': total, 'seconds': time.perf_counter() - t0}))
`;

function writeTree(root: string, totalMiB: number, fileMiB: number): void {
  const files = Math.max(1, Math.round(totalMiB / fileMiB));
  const block = Buffer.alloc(fileMiB * 1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + 17) & 0xff;
  for (let f = 0; f < files; f++) {
    const dir = join(root, `lane${f % 4}`);
    mkdirSync(dir, { recursive: true });
    block[0] = f & 0xff;
    writeFileSync(join(dir, `part${f}.bin`), block);
  }
}

async function celeriacOnce(root: string): Promise<{ bytes: number; seconds: number }> {
  const t0 = performance.now();
  let bytes = 0;
  for await (const e of walkTree(root)) {
    if (e.type === 'file') await md5File(e.abs, (n) => (bytes += n));
  }
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

function pythonOnce(python: string, root: string, chunk: number): { bytes: number; seconds: number } {
  return JSON.parse(execFileSync(python, ['-c', PY_HASH, root, String(chunk)], { encoding: 'utf8' })) as { bytes: number; seconds: number };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function runMd5Bench(opts: Md5BenchOptions): Promise<string> {
  const root = join(opts.tempDir, 'md5-tree');
  writeTree(root, opts.totalMiB, opts.fileMiB);
  await celeriacOnce(root); // warms the page cache for everyone
  const contenders: [string, () => Promise<{ bytes: number; seconds: number }>][] = [
    ['Celeriac inspect_dataset (md5File, 1 MiB chunks, read ahead)', () => celeriacOnce(root)],
    ["Python hashlib, Bioloop's checksum (4 KiB chunks)", async () => pythonOnce(opts.python, root, 4096)],
    ['Python hashlib, 1 MiB chunks', async () => pythonOnce(opts.python, root, 1 << 20)],
  ];
  const rates = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
  for (let r = 0; r < opts.repeat; r++) {
    for (const [name, run] of contenders) {
      const { bytes, seconds } = await run();
      rates.get(name)!.push(bytes / 1e6 / seconds);
    }
  }
  const celeriac = median(rates.get(contenders[0]![0])!);
  const body = contenders.map(([name]) => {
    const m = median(rates.get(name)!);
    return [name, m.toFixed(0), (celeriac / m).toFixed(2)];
  });
  return [
    `\nmd5 throughput over ${opts.totalMiB} MiB (${Math.round(opts.totalMiB / opts.fileMiB)} files), page cache warm, median of ${opts.repeat}`,
    ...renderTable(['contender', 'MB/s', 'Celeriac / this'], body, new Set([0])),
    '',
  ].join('\n');
}
