/** The runtime's `celeriac` program; extensions (domain commands, worker modes) are added by the caller. */
import { Command } from 'commander';
import { addWorkerCommand, type WorkerMode } from './worker';
import { addCallCommand } from './call';
import { addWorkersCommand, type FleetSource } from './workers';

export interface ProgramExtensions {
  /** Other workers behind `celeriac worker --<flag>`. */
  workerModes?: readonly WorkerMode[];
  /** Other workers `celeriac workers list` shows from their own records. */
  fleetSources?: readonly FleetSource[];
}

export function buildProgram(extensions: ProgramExtensions = {}): Command {
  const program = new Command('celeriac').description('Celery-compatible task worker for Node').version('0.1.0');
  addWorkerCommand(program, extensions.workerModes);
  addCallCommand(program);
  addWorkersCommand(program, extensions.fleetSources);
  return program;
}

/** Parses argv and runs the command; an error ends the process with its message and status 1. */
export function runProgram(program: Command, argv: readonly string[] = process.argv): void {
  program.parseAsync([...argv]).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
