/** One task message held by this worker, from delivery until it is settled. */
import type { Delivery } from '../transports/transport';
import type { TaskRequest } from '../protocol/message';
import type { TaskDefinition, TaskOptions } from '../app/task';

export interface Job {
  delivery: Delivery;
  request: TaskRequest;
  def: TaskDefinition;
  options: TaskOptions;
  /** Made on first use (time limit, this.signal): one per message costs noticeably at 40k/s. */
  controller: AbortController | null;
  acked: boolean;
  /** Copies of this message the broker redelivered while it ran here (acked when it ends). */
  redeliveries: Delivery[];
  /**
   * Its message was given back to the broker (requeued) while the job is still winding down here:
   * a redelivered copy arriving now is a new run, not a duplicate of this one.
   */
  requeued?: boolean;
  /** Seconds since the epoch when it started running (Celery's Request.time_start). */
  timeStart?: number;
}
