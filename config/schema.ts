/**
 * The convict schema: what each key must look like, and which environment variable feeds it.
 *
 * Defaults are `null` here on purpose: the real defaults live in common.ts (one place to read
 * and change them), and common.ts is always loaded first. A key that common.ts forgets then
 * fails validation instead of silently taking a second, drifting default.
 */
import convict from 'convict';
import { FORMAT, registerFormats } from './formats';
import type { Config } from './types';

registerFormats();

type Leaf = convict.SchemaObj;

/** A schema leaf whose value comes from common.ts (see the header). */
function key(format: string, doc: string, extra: Partial<Leaf> = {}): Leaf {
  return { format, default: null, doc, ...extra };
}

/** A free-form object (Celery passes these straight to the client library). */
function freeObject(doc: string, nullable = false): Leaf {
  // convict only treats a leaf as opaque (no descent into unknown sub-keys) when its format is
  // the built-in Object; a custom format name would make it look for a nested schema.
  return { format: Object, default: null, nullable, doc };
}

export const schema: convict.Schema<Config> = {
  celery: {
    broker_url: key(FORMAT.brokerUrl, 'Broker URL (Celery broker_url)', { env: 'CELERY_BROKER_URL' }),
    result_backend: key(FORMAT.backendUrl, 'Result backend URL', { env: 'CELERY_RESULT_BACKEND' }),
    broker_transport_options: {
      visibility_timeout: key(FORMAT.positiveSeconds, 'Seconds before an unacked message is redelivered', { env: 'CELERIAC_VISIBILITY_TIMEOUT' }),
      global_keyprefix: key(FORMAT.string, 'Prefix for every redis key', { env: 'CELERIAC_GLOBAL_KEYPREFIX' }),
      priority_steps: key(FORMAT.prioritySteps, 'Priority buckets (one redis list each)'),
      sep: key(FORMAT.string, 'Separator between queue name and priority'),
      fanout_prefix: key(FORMAT.boolean, 'Prefix fanout channels with the db number'),
      fanout_patterns: key(FORMAT.boolean, 'Subscribe to fanout channels by routing-key pattern'),
      data_folder_in: key(FORMAT.name, 'Filesystem transport: folder messages are read from', { env: 'CELERIAC_DATA_FOLDER_IN' }),
      data_folder_out: key(FORMAT.name, 'Filesystem transport: folder messages are written to', { env: 'CELERIAC_DATA_FOLDER_OUT' }),
      control_folder: key(FORMAT.name, 'Filesystem transport: folder for exchange bindings', { env: 'CELERIAC_CONTROL_FOLDER' }),
      processed_folder: key(FORMAT.name, 'Filesystem transport: folder for processed messages'),
      store_processed: key(FORMAT.boolean, 'Filesystem transport: keep processed messages'),
      unacked_restore_interval: key(FORMAT.seconds, 'Seconds between restores of timed-out unacked messages', { env: 'CELERIAC_UNACKED_RESTORE_INTERVAL' }),
      unacked_mutex_expire: key(FORMAT.seconds, 'Seconds the restore mutex (unacked_mutex) lives if its holder dies mid-sweep', { env: 'CELERIAC_UNACKED_MUTEX_EXPIRE' }),
      confirm_publish: key(FORMAT.boolean, 'AMQP: confirm every rpc:// result, also of tasks already acked (kombu confirm_publish)', { env: 'CELERIAC_CONFIRM_PUBLISH' }),
      master_name: key(FORMAT.string, 'sentinel:// brokers: the name Sentinel monitors the master under', { env: 'CELERIAC_MASTER_NAME' }),
      sentinel_kwargs: { ...freeObject('sentinel:// brokers: {password, username} of the Sentinels themselves (JSON)', true), env: 'CELERIAC_SENTINEL_KWARGS' },
    },
    broker_failover_strategy: key(FORMAT.failoverStrategy, 'Next broker URL of a failover list: round-robin or shuffle', { env: 'CELERIAC_BROKER_FAILOVER_STRATEGY' }),
    broker_api: key(FORMAT.nullableHttpUrl, "RabbitMQ management API, as Flower's --broker_api (http://user:password@host:15672/api/); null = off", { env: 'CELERIAC_BROKER_API' }),
    result_expires: key(FORMAT.seconds, 'Seconds results are kept; 0 = never expire'),
    result_extended: key(FORMAT.boolean, 'Store task name, args, worker, ... with results', { env: 'CELERIAC_RESULT_EXTENDED' }),
    task_default_queue: key(FORMAT.name, 'Queue used when a task has no route'),
    task_queues: key(FORMAT.queueDefinitions, 'Queues with their exchanges (null = one per -Q name)', { env: 'CELERIAC_TASK_QUEUES' }),
    task_create_missing_queue_type: key(FORMAT.queueType, 'classic or quorum, for queues not in task_queues', { env: 'CELERIAC_CREATE_MISSING_QUEUE_TYPE' }),
    task_queue_max_priority: key(FORMAT.maxPriority, 'x-max-priority of declared AMQP queues (null = none)', { env: 'CELERIAC_TASK_QUEUE_MAX_PRIORITY' }),
    task_acks_late: key(FORMAT.boolean, 'Ack after the task ran instead of before', { env: 'CELERIAC_TASK_ACKS_LATE' }),
    task_reject_on_worker_lost: key(FORMAT.boolean, 'Requeue late-ack tasks whose worker died'),
    task_track_started: key(FORMAT.boolean, 'Report the STARTED state', { env: 'CELERIAC_TASK_TRACK_STARTED' }),
    task_ignore_result: key(FORMAT.boolean, 'Do not store results by default'),
    task_serializer: key(FORMAT.serializer, 'Serializer for messages this process sends'),
    result_serializer: key(FORMAT.serializer, 'Serializer for stored results'),
    accept_content: key(FORMAT.acceptContent, 'Content types accepted from the broker'),
    task_soft_time_limit: key(FORMAT.timeLimit, 'Soft time limit in seconds (null = none)'),
    task_time_limit: key(FORMAT.timeLimit, 'Hard time limit in seconds (null = none)'),
    worker_concurrency: key(FORMAT.positiveInt, 'Tasks run at the same time', { env: 'CELERIAC_CONCURRENCY' }),
    worker_prefetch_multiplier: key(FORMAT.nonNegativeInt, 'Prefetch = concurrency x this; 0 = unlimited'),
    worker_send_task_events: key(FORMAT.boolean, 'Send task events for monitors (celery worker -E)', { env: 'CELERIAC_WORKER_SEND_TASK_EVENTS' }),
    worker_state_db: key(FORMAT.nullablePath, 'Keep the revoked set in this file across restarts (--statedb)'),
    worker_max_tasks_per_child: key(FORMAT.nullablePositiveInt, 'Replace a pool thread/process after this many tasks (null = never)'),
    worker_max_memory_per_child: key(FORMAT.nullablePositiveInt, 'Replace a pool thread/process above this resident memory, in KiB (null = never)'),
    broker_connection_retry_on_startup: key(FORMAT.boolean, 'Retry the first broker connection'),
    result_backend_transport_options: {
      ...freeObject('Options for the result backend client (sentinel://: master_name, sentinel_kwargs) (JSON)'),
      env: 'CELERIAC_RESULT_BACKEND_TRANSPORT_OPTIONS',
    },
    redis_backend_use_ssl: freeObject('TLS options for a redis result backend', true),
    mongodb_backend_settings: freeObject("Celery's mongodb_backend_settings: database, taskmeta_collection, groupmeta_collection, options", true),
    broker_use_ssl: freeObject('TLS options for the broker connection', true),
    task_routes: freeObject('Task name (or glob) -> {queue, ...}'),
  },
  worker: {
    hostname: key(FORMAT.name, 'Node name; %h = host name'),
    queues: key(FORMAT.queueList, 'Queues to consume', { env: 'CELERIAC_QUEUES' }),
    tasks: key(FORMAT.stringList, 'Task modules to load'),
    pidfile: key(FORMAT.nullablePath, 'Write the pid here (null = do not)'),
    pool: key(FORMAT.pool, 'Execution pool: async, threads or processes', { env: 'CELERIAC_POOL' }),
    autoscale: key(FORMAT.autoscale, "Celery's --autoscale 'max,min' (null = fixed concurrency)", { env: 'CELERIAC_AUTOSCALE' }),
    autoscale_keepalive: key(FORMAT.positiveSeconds, 'Idle seconds before autoscale shrinks the pool (Celery: 30)', { env: 'CELERIAC_AUTOSCALE_KEEPALIVE' }),
    optimization: key(FORMAT.optimization, "Celery's -O: default or fair scheduling"),
    // Same variable as log.level: Celery has one log level, we keep both names in step.
    loglevel: key(FORMAT.logLevel, "Celery's --loglevel", { env: 'CELERIAC_LOG_LEVEL' }),
    metrics_port: key(FORMAT.nullablePort, 'Serve Prometheus metrics on http://<host>:<port>/metrics (null = off)', { env: 'CELERIAC_METRICS_PORT' }),
  },
  log: {
    level: key(FORMAT.logLevel, 'Logger level', { env: 'CELERIAC_LOG_LEVEL' }),
    pretty: key(FORMAT.boolean, 'Celery-style text lines instead of JSON'),
  },
  mongo: {
    url: key(FORMAT.mongoUrl, 'MongoDB connection URL (workflows, datasets, climate jobs; `npm run mongo` serves one locally)', { env: 'CELERIAC_MONGO_URL' }),
    db: key(FORMAT.nullableName, "MongoDB database name (default: the URL's, else celeriac)", { env: 'CELERIAC_MONGO_DB' }),
  },
  climate: {
    // Checked entry by entry when the API or a job reads it (workers/jobs/datasets.ts names the bad key).
    datasets: { ...freeObject('ClimateSERV datatype -> {name, folder, variable, pattern?} (JSON in env)'), env: 'CELERIAC_CLIMATE_DATASETS' },
    output_dir: key(FORMAT.name, 'Folder for climate job results and download zips', { env: 'CELERIAC_CLIMATE_OUTPUT_DIR' }),
    max_area_km2: key(FORMAT.positiveNumber, 'Largest request area in km² (larger: 400)', { env: 'CELERIAC_CLIMATE_MAX_AREA_KM2' }),
    max_years: key(FORMAT.positiveNumber, 'Longest request date range in years (longer: 400)', { env: 'CELERIAC_CLIMATE_MAX_YEARS' }),
    queue: key(FORMAT.name, 'Queue the climate job task is sent to', { env: 'CELERIAC_CLIMATE_QUEUE' }),
    api_port: key(FORMAT.port, 'Port of `celeriac climate-api`', { env: 'CELERIAC_CLIMATE_API_PORT' }),
    job_lease_seconds: key(FORMAT.positiveSeconds, 'Seconds without a write before a job counts as abandoned by its worker', { env: 'CELERIAC_CLIMATE_JOB_LEASE' }),
  },
  curation: {
    index: key(FORMAT.name, 'Index CSV of the NetCDF files (celeriac create-index)', { env: 'CELERIAC_CURATION_INDEX' }),
    file_pattern: key(FORMAT.name, 'Regex over file names; named groups name, table, param, start, end (YYYYMMDDHH)', { env: 'CELERIAC_CURATION_FILE_PATTERN' }),
    regrid_command: key(FORMAT.name, 'Regrid command line (split on spaces); {input} and {output} are replaced', { env: 'CELERIAC_CURATION_REGRID_COMMAND' }),
    regrid_output: key(FORMAT.name, 'Folder of the regridded files', { env: 'CELERIAC_CURATION_REGRID_OUTPUT' }),
    zarr: key(FORMAT.name, 'The curated zarr v3 store (a folder)', { env: 'CELERIAC_CURATION_ZARR' }),
    variables: key(FORMAT.stringList, 'Single-level variables (time x grid)', { env: 'CELERIAC_CURATION_VARIABLES' }),
    level_variables: key(FORMAT.stringList, 'Pressure-level variables (time x levels x grid)', { env: 'CELERIAC_CURATION_LEVEL_VARIABLES' }),
    levels: key(FORMAT.positiveInt, 'Number of levels of the level variables', { env: 'CELERIAC_CURATION_LEVELS' }),
    grid: key(FORMAT.name, "Grid shape after regridding, e.g. '180x360' or '49152'", { env: 'CELERIAC_CURATION_GRID' }),
    grid_dims: key(FORMAT.stringList, 'One name per grid dimension', { env: 'CELERIAC_CURATION_GRID_DIMS' }),
    time_start: key(FORMAT.name, 'First instant of the store (ISO, UTC)', { env: 'CELERIAC_CURATION_TIME_START' }),
    time_end: key(FORMAT.name, 'Last instant of the store (ISO, UTC, inclusive)', { env: 'CELERIAC_CURATION_TIME_END' }),
    time_step_minutes: key(FORMAT.positiveInt, 'Minutes between time steps', { env: 'CELERIAC_CURATION_TIME_STEP_MINUTES' }),
    time_chunk: key(FORMAT.positiveInt, 'Time steps per chunk (align with the files: a chunk is written by one file)', { env: 'CELERIAC_CURATION_TIME_CHUNK' }),
  },
  workflows: {
    app_id: key(FORMAT.name, "sca-rhythm's app_id for workflows started here; step queues default to <app_id>.q", { env: 'CELERIAC_WORKFLOWS_APP_ID' }),
    registry: freeObject("Bioloop's workflow_registry: name -> {steps: [{name, task, queue?, kwargs?, priority?}]}"),
  },
  datasets: {
    type: key(FORMAT.name, 'Dataset type the watch script registers (RAW_DATA, DATA_PRODUCT)', { env: 'CELERIAC_DATASET_TYPE' }),
    watch_root: key(FORMAT.name, 'New directories here are registered as datasets', { env: 'CELERIAC_DATASETS_WATCH_ROOT' }),
    archive_dir: key(FORMAT.name, 'Archive directory (stands in for tape)', { env: 'CELERIAC_DATASETS_ARCHIVE_DIR' }),
    bundle_dir: key(FORMAT.name, 'Working space for tars (generate/, stage/)', { env: 'CELERIAC_DATASETS_BUNDLE_DIR' }),
    staging_dir: key(FORMAT.name, 'Datasets are staged to <staging_dir>/<alias>/<name>', { env: 'CELERIAC_DATASETS_STAGING_DIR' }),
    download_dir: key(FORMAT.name, 'Download links are made here', { env: 'CELERIAC_DATASETS_DOWNLOAD_DIR' }),
    rejects: key(FORMAT.stringList, 'Directory name patterns the watch script skips'),
    recency_threshold_seconds: key(FORMAT.seconds, 'A tree unchanged this long is stable (await_stability)', { env: 'CELERIAC_DATASETS_RECENCY_THRESHOLD' }),
    stability_check_interval_seconds: key(FORMAT.positiveSeconds, 'Seconds between stability checks', { env: 'CELERIAC_DATASETS_STABILITY_INTERVAL' }),
    poll_interval_seconds: key(FORMAT.positiveSeconds, 'Seconds between scans of watch_root', { env: 'CELERIAC_DATASETS_POLL_INTERVAL' }),
    full_scan_every_n_scans: key(FORMAT.positiveInt, 'Every Nth scan is a full scan (catches what a restart missed)'),
    file_batch_size: key(FORMAT.positiveInt, 'Dataset files written per insert'),
    stage_alias_salt: key(FORMAT.string, 'Salt of the stage alias (Bioloop ALIAS_SALT)', { env: 'CELERIAC_DATASETS_ALIAS_SALT' }),
    genome_file_types: key(FORMAT.stringList, 'File suffixes counted as genome files'),
    workflow: key(FORMAT.name, 'Workflow started for a new dataset'),
    retry_delay_seconds: key(FORMAT.seconds, 'Seconds between retries of a transient task failure'),
    purge: {
      workflow_types: key(FORMAT.stringList, 'Workflow names purge-stale-workflows may delete'),
      age_threshold_seconds: key(FORMAT.seconds, 'Only workflows older than this are purged'),
      max_purge_count: key(FORMAT.positiveInt, 'At most this many workflows per run'),
    },
  },
};
