/**
 * The workflow registry (Bioloop's `workflow_registry`): named step lists in config
 * (`workflows.registry`), each step's queue defaulting to `<app_id>.q` as Bioloop routes its
 * tasks, so `startRegistered(app, config, 'integrated', [datasetId])` is all a caller needs.
 */
import type { Celeriac } from '../index';
import type { Config } from '../../config/types';
import { validateSteps, Workflow } from './workflow';
import type { WorkflowStepSpec } from './types';

export interface RegisteredWorkflow {
  steps: WorkflowStepSpec[];
  description?: string | null;
}

export type WorkflowRegistry = Record<string, RegisteredWorkflow>;

/** The steps of `name` with queues filled in; a clear error naming the known workflows otherwise. */
export function registeredWorkflow(config: Pick<Config, 'workflows'>, name: string): { name: string; app_id: string; steps: WorkflowStepSpec[]; description: string | null } {
  const { app_id: appId, registry } = config.workflows;
  const entry = (registry as WorkflowRegistry)[name];
  if (!entry) throw new Error(`no workflow named ${JSON.stringify(name)} in workflows.registry (known: ${Object.keys(registry).join(', ') || 'none'})`);
  const steps = (entry.steps ?? []).map((s) => ({ ...s, queue: s.queue ?? `${appId}.q` }));
  validateSteps(steps, name, appId);
  return { name, app_id: appId, steps, description: entry.description ?? null };
}

/** Create the registered workflow `name` and send its first step with `args`. */
export async function startRegistered(app: Celeriac, config: Pick<Config, 'workflows'>, name: string, args: unknown[]): Promise<Workflow> {
  const workflow = await Workflow.create(app, registeredWorkflow(config, name));
  await workflow.start(args);
  return workflow;
}
