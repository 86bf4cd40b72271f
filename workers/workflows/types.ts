/**
 * The documents of sca-rhythm 0.6.15 (sca_rhythm/__init__.py), field for field: `workflow_meta`
 * in the result backend's database, one document per workflow; step status comes from the
 * step's last task run in celery_taskmeta.
 */

/** A step as given to create(): sca-rhythm's step dict. */
export interface WorkflowStepSpec {
  name: string;
  task: string;
  queue?: string;
  kwargs?: Record<string, unknown>;
  /** Celery priority; default: the step's 1-based position. Clamped to 0-9 when sent. */
  priority?: number;
}

export interface TaskRun {
  task_id: string;
  date_start: Date;
}

export interface WorkflowStep extends WorkflowStepSpec {
  task_runs?: TaskRun[];
}

export interface WorkflowDocument {
  _id: string;
  created_at: Date;
  updated_at?: Date;
  steps: WorkflowStep[];
  name: string;
  app_id: string;
  description: string | null;
  /** PENDING, STARTED, REVOKED, FAILURE, SUCCESS: what the last worker or pause() recorded. */
  _status: string;
  /** Set by resume(), cleared by the next step start: a second resume waits for that. */
  resume_lock?: Date | null;
}

/** A celery_taskmeta document as sca-rhythm's get_task_instance returns it (result JSON-decoded). */
export type TaskInstance = Record<string, unknown> & { _id: string; date_start: Date | null };

export interface EmbellishedStep {
  name: string;
  task: string;
  status: string;
  last_task_run?: TaskInstance | null;
  prev_task_runs?: (TaskInstance | null)[];
}

/** sca-rhythm's get_embellished_workflow(). */
export interface EmbellishedWorkflow {
  id: string;
  name: string | null;
  app_id: string | null;
  description: string | null;
  created_at: Date | null;
  updated_at: Date | null;
  status: string;
  steps_done: number;
  total_steps: number;
  steps: EmbellishedStep[];
  resume_lock: Date | null;
}

export interface PauseResult {
  paused: boolean;
  revoked_step?: { task_id: string; task: string; name: string };
}

export interface ResumeResult {
  resumed: boolean;
  restarted_step?: { name: string; task: string };
}
