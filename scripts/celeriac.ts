#!/usr/bin/env node
/**
 * The `celeriac` command: the runtime's program (worker, call, workers) plus the domain's
 * commands and worker modes. This file is the composition root: the only place that knows both.
 */
import { appFromConfig, buildProgram, runProgram } from '../workers';
import { workflowLauncher } from '../workers/datasets/launcher';
import { addPurgeStaleWorkflowsCommand } from './purgeStaleWorkflows';
import { addWatchCommand } from './watch';
import { addWorkflowsCommand } from './workflows';

const program = buildProgram({ workerModes: [] });
addWorkflowsCommand(program);
addWatchCommand(program, async (cfg, log) => {
  // The watcher creates workflows in the mongodb result backend and sends their first steps.
  const app = appFromConfig(cfg, log);
  return { ...workflowLauncher(app, cfg), close: () => app.close() };
});
addPurgeStaleWorkflowsCommand(program);
runProgram(program);
