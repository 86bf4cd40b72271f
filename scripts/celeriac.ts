#!/usr/bin/env node
/**
 * The `celeriac` command: the runtime's program (worker, call, workers) plus the domain's
 * commands and worker modes. This file is the composition root: the only place that knows both.
 */
import { buildProgram, runProgram } from '../workers';
import { addPurgeStaleWorkflowsCommand } from './purgeStaleWorkflows';
import { addWorkflowsCommand } from './workflows';

const program = buildProgram({ workerModes: [] });
addWorkflowsCommand(program);
addPurgeStaleWorkflowsCommand(program);
runProgram(program);
