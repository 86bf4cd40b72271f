/**
 * The watch script's WorkflowLauncher over workers/workflows: a registry workflow (config
 * `workflows.registry`, Bioloop's) created as sca-rhythm would (`workflow_meta` in the mongodb
 * result backend's database) and started with the dataset id as its argument.
 */
import type { Config } from '../../config';
import type { Celeriac } from '../index';
import { registeredWorkflow, Workflow } from '../workflows';
import type { WorkflowLauncher } from './watch';

export function workflowLauncher(app: Celeriac, config: Pick<Config, 'workflows'>): WorkflowLauncher {
  return {
    async create(name) {
      return (await Workflow.create(app, registeredWorkflow(config, name))).id;
    },
    async start(workflowId, datasetId) {
      await (await Workflow.load(app, workflowId)).start([datasetId]);
    },
  };
}
