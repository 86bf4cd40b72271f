/** Listing workflow_meta documents (the `celeriac workflows list` command, purge jobs). */
import type { Filter } from 'mongodb';
import type { Celeriac } from '../index';
import { mongoBackendOf, WORKFLOW_COLLECTION } from './workflow';
import type { WorkflowDocument } from './types';

export interface WorkflowListFilter {
  /** Only workflows whose recorded `_status` is this (PENDING, STARTED, REVOKED, FAILURE, SUCCESS). */
  status?: string;
  name?: string;
  appId?: string;
  limit?: number;
}

export async function listWorkflows(app: Celeriac, filter: WorkflowListFilter = {}): Promise<WorkflowDocument[]> {
  const db = await (await mongoBackendOf(app)).database();
  const query: Filter<WorkflowDocument> = {};
  if (filter.status) query._status = filter.status;
  if (filter.name) query.name = filter.name;
  if (filter.appId) query.app_id = filter.appId;
  return db.collection<WorkflowDocument>(WORKFLOW_COLLECTION).find(query).sort({ created_at: -1 }).limit(filter.limit ?? 50).toArray();
}
