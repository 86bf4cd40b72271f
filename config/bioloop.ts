/**
 * APP_ENV=bioloop: Bioloop's worker settings (its workers/config/celeryconfig.py), for workers
 * that run the dataset tasks beside or instead of Bioloop's Python workers. Point
 * CELERY_BROKER_URL at its RabbitMQ, CELERY_RESULT_BACKEND and CELERIAC_MONGO_URL at its MongoDB.
 */
import type { Config, DeepPartial } from './types';

const ONE_DAY = 24 * 60 * 60;
const TEN_MINUTES = 10 * 60;
/** Bioloop's config['app_id']; its queue is `<app_id>.q`. */
const APP_ID = process.env.CELERIAC_WORKFLOWS_APP_ID ?? 'celeriac';

const bioloop: DeepPartial<Config> = {
  celery: {
    // Tasks run for hours: ack when done, and give the message back if the worker dies mid-task.
    task_acks_late: true,
    task_reject_on_worker_lost: true,
    // One message per slot: a long task never sits behind another in a prefetch buffer.
    worker_prefetch_multiplier: 1,
    // Each pool child runs one task and is replaced: new code is picked up without a restart.
    worker_max_tasks_per_child: 1,
    task_track_started: true,
    task_time_limit: ONE_DAY,
    task_soft_time_limit: ONE_DAY - TEN_MINUTES,
    // Workflow steps carry their position as priority (0-9): the queue must be a priority queue.
    task_queue_max_priority: 10,
    task_default_queue: `${APP_ID}.q`,
    result_extended: true,
    // Results are kept: workflow views read them.
    result_expires: 0,
    result_serializer: 'json',
    task_serializer: 'json',
  },
  worker: {
    hostname: `${APP_ID}-celeriac-w1@%h`,
    queues: [`${APP_ID}.q`],
    tasks: ['./workers/tasks/bioloop'],
    pool: 'processes',
    autoscale: '8,2',
    optimization: 'fair',
  },
  workflows: {
    app_id: APP_ID,
  },
};

export default bioloop;
