#!/usr/bin/env node
/** The `celeriac` command: worker and call, mirroring the `celery` CLI, and `workers` for the fleet. */
import { Command } from 'commander';
import { addWorkerCommand } from './worker';
import { addCallCommand } from './call';
import { addWorkersCommand } from './workers';

const program = new Command('celeriac').description('Celery-compatible task worker for Node').version('0.1.0');
addWorkerCommand(program);
addCallCommand(program);
addWorkersCommand(program);
program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
