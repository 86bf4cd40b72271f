/**
 * Workflows with sca-rhythm 0.6.15's semantics and documents (public interface of this folder).
 *
 *   Workflow.create(app, {steps, name, app_id, description}) / Workflow.load(app, id)
 *     .start(args) .pause() .resume({force, args}) .refresh() .status() .view({prevTaskRuns})
 *   workflowTask(app, name, fn, options)   a task that behaves as sca-rhythm's WorkflowTask
 *   progress(this, {name, total, units})   sca_rhythm.progress: STARTED meta, throttled, ETA
 *   registeredWorkflow(config, name) / startRegistered(app, config, name, args)   config registry
 *   listWorkflows(app, filter)             workflow_meta documents, newest first
 * All need the mongodb:// result backend (workflows live in its database, as in sca-rhythm).
 */
export { Workflow, WorkflowNotFound, validateSteps, mongoBackendOf, WORKFLOW_COLLECTION, RESUME_LOCK_COLLECTION } from './workflow';
export { workflowTask, type WorkflowKwargs } from './workflowTask';
export { progress, Progress, Eta, ExponentialWeightedAverage, UNKNOWN_ETA, type ProgressReport, type ProgressOptions } from './progress';
export { registeredWorkflow, startRegistered, type RegisteredWorkflow, type WorkflowRegistry } from './registry';
export { listWorkflows, type WorkflowListFilter } from './list';
export type * from './types';
