#!/usr/bin/env node
/**
 * The `celeriac` command: the runtime's program (worker, call, workers) plus the domain's
 * commands and worker modes. This file is the composition root: the only place that knows both.
 */
import { buildProgram, runProgram } from '../workers';
import { rqFleetSource, rqWorkerMode } from '../workers/rq';
import { addClimateApiCommand } from './climateApi';
import { addJobsCommand } from './jobs';
import { addCurationCommands } from './curation';
import { addWorkflowsCommand } from './workflows';

const program = buildProgram({ workerModes: [rqWorkerMode], fleetSources: [rqFleetSource] });
addClimateApiCommand(program);
addJobsCommand(program);
addCurationCommands(program);
addWorkflowsCommand(program);
runProgram(program);
