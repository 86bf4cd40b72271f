/**
 * `climate.regrid`'s work: run the configured command (cBottle: `cdo remapbil,<grid>`) on one
 * file. The output is written under a temp name in the output folder and renamed when the
 * command succeeded, so a file under its final name is always complete: a killed worker leaves
 * at most a `.name.tmp-<pid>` file, which nothing counts as done.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { CurationSettings } from './settings';

export interface RegridResult {
  input: string;
  output: string;
  /** true: the output was already there, nothing ran. */
  existed: boolean;
}

export function regriddedPath(settings: CurationSettings, input: string): string {
  return join(settings.regridOutput, basename(input));
}

function run(command: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (error) => reject(new Error(`${command[0]}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no output'}`)),
    );
  });
}

export async function regridFile(input: string, settings: CurationSettings): Promise<RegridResult> {
  const output = regriddedPath(settings, input);
  if (existsSync(output)) return { input, output, existed: true };
  if (!existsSync(input)) throw new Error(`${input}: no such file`);
  await mkdir(settings.regridOutput, { recursive: true });
  const tmp = join(settings.regridOutput, `.${basename(input)}.tmp-${process.pid}`);
  try {
    await run(settings.regridCommand.map((a) => a.replace('{input}', input).replace('{output}', tmp)));
    await rename(tmp, output);
  } finally {
    await rm(tmp, { force: true });
  }
  return { input, output, existed: false };
}
