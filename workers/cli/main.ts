#!/usr/bin/env node
/** The runtime alone (worker, call, workers); `scripts/celeriac.ts` is the full command with domain commands. */
import { buildProgram, runProgram } from './program';

runProgram(buildProgram());
