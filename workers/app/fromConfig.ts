/** Build the app and worker options from the validated config (config/ -> runtime objects). */
import { availableParallelism } from 'node:os';
import type { Config } from '../../config/types';
import { brokerUrlOf } from '../../config';
import type { SerializerName } from '../protocol/serializers';
import { serializerFor } from '../protocol/serializers';
import { Celeriac, type AppLogger } from './app';
import type { TaskOptions } from './task';
import type { WorkerOptions } from '../worker/worker';
import { nodeName } from '../worker/hostname';
import { parseAutoscale } from '../worker/autoscaler';

export function appFromConfig(config: Config, logger: AppLogger): Celeriac {
  const c = config.celery;
  const taskDefaults: TaskOptions = {
    acks_late: c.task_acks_late,
    reject_on_worker_lost: c.task_reject_on_worker_lost,
    track_started: c.task_track_started,
    ignore_result: c.task_ignore_result,
    soft_time_limit: c.task_soft_time_limit,
    time_limit: c.task_time_limit,
  };
  return new Celeriac({
    // Celery's list form is the same failover list as 'url1;url2'.
    brokerUrl: brokerUrlOf(config),
    brokerFailoverStrategy: c.broker_failover_strategy,
    brokerApi: c.broker_api,
    resultBackend: c.result_backend || null,
    brokerTransportOptions: { ...c.broker_transport_options },
    resultBackendTransportOptions: { ...c.result_backend_transport_options },
    brokerUseSsl: c.broker_use_ssl ? { ...c.broker_use_ssl } : null,
    redisBackendUseSsl: c.redis_backend_use_ssl ? { ...c.redis_backend_use_ssl } : null,
    mongodbBackendSettings: c.mongodb_backend_settings ? { ...c.mongodb_backend_settings } : null,
    resultExpires: c.result_expires,
    resultExtended: c.result_extended,
    defaultQueue: c.task_default_queue,
    taskRoutes: c.task_routes as Record<string, { queue?: string; priority?: number }>,
    taskSerializer: c.task_serializer,
    taskDefaults,
    logger,
  });
}

export function workerOptionsFromConfig(config: Config): WorkerOptions {
  const accept = config.celery.accept_content
    .map((t) => serializerFor(t))
    .filter((s): s is SerializerName => s !== undefined);
  return {
    hostname: nodeName(config.worker.hostname),
    queues: config.worker.queues.length ? [...config.worker.queues] : [config.celery.task_default_queue],
    concurrency: config.celery.worker_concurrency || availableParallelism(),
    prefetchMultiplier: config.celery.worker_prefetch_multiplier,
    accept,
    statedb: config.celery.worker_state_db,
    autoscale: config.worker.autoscale ? { ...parseAutoscale(config.worker.autoscale), keepalive: config.worker.autoscale_keepalive } : null,
    queuePolicy: {
      definitions: config.celery.task_queues,
      maxPriority: config.celery.task_queue_max_priority,
      missingQueueType: config.celery.task_create_missing_queue_type,
    },
  };
}
