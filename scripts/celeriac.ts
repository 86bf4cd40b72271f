#!/usr/bin/env node
/**
 * The `celeriac` command: the runtime's program (worker, call, workers) plus the domain's
 * commands and worker modes. This file is the composition root: the only place that knows both.
 */
import { appFromConfig, buildProgram, runProgram } from '../workers';
import { rqFleetSource, rqWorkerMode } from '../workers/rq';
import { workflowLauncher } from '../workers/datasets/launcher';
import { addClimateApiCommand } from './climateApi';
import { addJobsCommand } from './jobs';
import { addCurationCommands } from './curation';
import { addPurgeStaleWorkflowsCommand } from './purgeStaleWorkflows';
import { addWatchCommand } from './watch';
import { addWorkflowsCommand } from './workflows';

const program = buildProgram({ workerModes: [rqWorkerMode], fleetSources: [rqFleetSource] });
addClimateApiCommand(program);
addJobsCommand(program);
addCurationCommands(program);
addWorkflowsCommand(program);
addWatchCommand(program, async (cfg, log) => {
  // The watcher creates workflows in the mongodb result backend and sends their first steps.
  const app = appFromConfig(cfg, log);
  return { ...workflowLauncher(app, cfg), close: () => app.close() };
});
addPurgeStaleWorkflowsCommand(program);
runProgram(program);
