/**
 * The shape of the validated configuration. Celery's own setting names (snake_case) are kept
 * under `celery` so a setting can be looked up in Celery's documentation by its name.
 */
import type { LogLevel } from '../workers/log/levels';

export type { LogLevel };
export type Serializer = 'json' | 'msgpack' | 'yaml';
export type WorkerPool = 'async' | 'threads' | 'processes';
export type WorkerOptimization = 'default' | 'fair';

/** kombu's transport options for the redis and filesystem transports (one object, as in Celery). */
export interface BrokerTransportOptions {
  /** Seconds before an unacknowledged message is redelivered. */
  visibility_timeout: number;
  global_keyprefix: string;
  priority_steps: number[];
  /** Separator between queue name and priority in redis list names (kombu's default). */
  sep: string;
  fanout_prefix: boolean;
  fanout_patterns: boolean;
  data_folder_in: string;
  data_folder_out: string;
  control_folder: string;
  processed_folder: string;
  store_processed: boolean;
  /** Seconds between scans that restore unacked messages whose visibility timeout passed. */
  unacked_restore_interval: number;
  /** Seconds `unacked_mutex` lives when the worker holding it dies mid-sweep (kombu's unacked_mutex_expire). */
  unacked_mutex_expire: number;
  /**
   * kombu's confirm_publish: rpc:// results of tasks already acked get a publisher confirm too.
   * Off by default, as in kombu; task messages are always confirmed.
   */
  confirm_publish: boolean;
  /** sentinel:// brokers: the name Sentinel monitors the master under (kombu's master_name). */
  master_name: string;
  /** sentinel:// brokers: the Sentinels' own credentials ({password, username}), as kombu's sentinel_kwargs. */
  sentinel_kwargs: Record<string, unknown> | null;
}

/** One entry of Celery's task_queues (kombu Queue + Exchange, flattened). */
export interface QueueDefinition {
  name: string;
  exchange?: string;
  exchange_type?: 'direct' | 'topic' | 'fanout';
  routing_key?: string;
  queue_arguments?: Record<string, unknown>;
  durable?: boolean;
  auto_delete?: boolean;
}

export interface CeleryConfig {
  /** One URL, several separated by ';', or a list (failover: Celery's broker_url list). */
  broker_url: string | string[];
  result_backend: string;
  broker_transport_options: BrokerTransportOptions;
  /** Next broker of a failover list: Celery's broker_failover_strategy. */
  broker_failover_strategy: 'round-robin' | 'shuffle';
  /**
   * RabbitMQ's management HTTP API (Flower's broker_api), e.g. http://guest:guest@localhost:15672/api/:
   * where `celeriac queues` reads unacked counts. null = not used.
   */
  broker_api: string | null;
  /** Seconds a result is kept; 0 = never expires. */
  result_expires: number;
  result_extended: boolean;
  task_default_queue: string;
  /** AMQP queues' x-max-priority, as Celery's task_queue_max_priority; null = none. */
  task_queue_max_priority: number | null;
  task_queues: QueueDefinition[] | null;
  task_create_missing_queue_type: 'classic' | 'quorum';
  task_acks_late: boolean;
  task_reject_on_worker_lost: boolean;
  task_track_started: boolean;
  task_ignore_result: boolean;
  task_serializer: Serializer;
  result_serializer: Serializer;
  /** Short names ('json') or content types ('application/json'), as Celery accepts both. */
  accept_content: string[];
  /** Seconds, or null for no limit. */
  task_soft_time_limit: number | null;
  task_time_limit: number | null;
  worker_concurrency: number;
  /** 0 = no prefetch limit (Celery's meaning). */
  worker_prefetch_multiplier: number;
  /** Task events (task-received, task-succeeded, ...) for Flower / `celery events`; worker heartbeats go out regardless. */
  worker_send_task_events: boolean;
  /** --statedb: the revoked set survives restarts in this file. */
  worker_state_db: string | null;
  worker_max_tasks_per_child: number | null;
  /** KiB, as Celery's. */
  worker_max_memory_per_child: number | null;
  broker_connection_retry_on_startup: boolean;
  result_backend_transport_options: Record<string, unknown>;
  /** Free-form, as Celery: {ssl_cert_reqs, ssl_ca_certs, ...}; null = no TLS options. */
  redis_backend_use_ssl: Record<string, unknown> | null;
  /** Celery's mongodb_backend_settings (database, taskmeta_collection, groupmeta_collection, options). */
  mongodb_backend_settings: Record<string, unknown> | null;
  broker_use_ssl: Record<string, unknown> | null;
  task_routes: Record<string, unknown>;
}

export interface WorkerConfig {
  /** Node name; `%h` is expanded to the host name by the worker. */
  hostname: string;
  queues: string[];
  /** Module paths of task modules to load at start. */
  tasks: string[];
  pidfile: string | null;
  pool: WorkerPool;
  /** 'max,min' as Celery's --autoscale, or null. */
  autoscale: string | null;
  autoscale_keepalive: number;
  optimization: WorkerOptimization;
  loglevel: LogLevel;
  /** Port of the Prometheus /metrics endpoint (--metrics-port); null = not served. */
  metrics_port: number | null;
}

export interface LogConfig {
  level: LogLevel;
  pretty: boolean;
}

export interface MongoConfig {
  url: string;
  /** null: the database in `url`, else 'celeriac'. */
  db: string | null;
}

/** One dataset of the climate job API, as the deployer describes it (keyed by ClimateSERV's datatype). */
export interface ClimateDatasetConfig {
  name: string;
  /** Folder of the NetCDF files, one time step per file. */
  folder: string;
  /** Variable read from each file (e.g. `precipitation`). */
  variable: string;
  /** How a file name carries its date; default: ClimateSERV's `YYYYMMDDTHHMMSSZ` part in `*.nc4` names. */
  pattern?: string;
}

export interface ClimateConfig {
  /** ClimateSERV datatype (an integer, as a string key) -> dataset. */
  datasets: Record<string, ClimateDatasetConfig>;
  /** Where job results (JSON data, download zips) are written; the API reads them from here. */
  output_dir: string;
  /** Largest request area, km² (ClimateSERV's UI caps the drawn area). */
  max_area_km2: number;
  /** Longest date range, years (ClimateSERV: 20). */
  max_years: number;
  /** Queue the job task is sent to. */
  queue: string;
  /** Port of `celeriac climate-api`. */
  api_port: number;
  /** A job whose worker has not written for this long is taken over by the next delivery. */
  job_lease_seconds: number;
}

/** The regrid/curation pipeline (workers/curation): index, regrid command, zarr store layout. */
export interface CurationConfig {
  /** The index CSV (cBottle's columns: file, table, param, name, start_date, end_date). */
  index: string;
  /** Regex over a file's base name; named groups name, table, param, start, end (YYYYMMDDHH). */
  file_pattern: string;
  /** The regrid command, words split on spaces; {input} and {output} are replaced by the paths. */
  regrid_command: string;
  /** Folder of the regridded files (same base names as the originals). */
  regrid_output: string;
  /** The zarr v3 store (a folder). */
  zarr: string;
  /** Single-level variables: time × grid. */
  variables: string[];
  /** Pressure-level variables: time × levels × grid. */
  level_variables: string[];
  levels: number;
  /** The regridded grid's shape, e.g. '180x360' (lat x lon) or '49152' (HEALPix cells). */
  grid: string;
  /** One name per grid dimension, e.g. ['lat', 'lon'] or ['cells']. */
  grid_dims: string[];
  /** The store's time axis: first instant (ISO, UTC), end instant (inclusive), step, chunk. */
  time_start: string;
  time_end: string;
  time_step_minutes: number;
  time_chunk: number;
}

/** A step of a registered workflow (sca-rhythm's step dict). */
export interface WorkflowStepConfig {
  name: string;
  task: string;
  queue?: string;
  kwargs?: Record<string, unknown>;
  priority?: number;
}

export interface WorkflowsConfig {
  /** sca-rhythm's app_id, sent to every step; step queues default to `<app_id>.q`. */
  app_id: string;
  /** Bioloop's workflow_registry: workflow name -> its steps. */
  registry: Record<string, { steps: WorkflowStepConfig[]; description?: string | null }>;
}

/** Bioloop-style dataset handling on local storage (an archive directory stands in for tape). */
export interface DatasetsConfig {
  /** Dataset type registered by the watch script (Bioloop: RAW_DATA, DATA_PRODUCT). */
  type: string;
  /** New directories here become datasets. */
  watch_root: string;
  /** Where archive_dataset puts `<name>.tar` (the tape stand-in). */
  archive_dir: string;
  /** Working space for tars: `generate/` (made by archive) and `stage/` (fetched by stage). */
  bundle_dir: string;
  /** stage_dataset extracts to `<staging_dir>/<alias>/<name>`. */
  staging_dir: string;
  /** setup_dataset_download links `<download_dir>/<alias>` and the bundle here. */
  download_dir: string;
  /** Directory names under watch_root never registered (fnmatch patterns). */
  rejects: string[];
  recency_threshold_seconds: number;
  stability_check_interval_seconds: number;
  poll_interval_seconds: number;
  full_scan_every_n_scans: number;
  file_batch_size: number;
  stage_alias_salt: string;
  genome_file_types: string[];
  /** Workflow the watch script starts for a new dataset. */
  workflow: string;
  /** Seconds between retries of a transient failure (Bioloop: 5). */
  retry_delay_seconds: number;
  purge: {
    workflow_types: string[];
    age_threshold_seconds: number;
    max_purge_count: number;
  };
}

export interface Config {
  celery: CeleryConfig;
  worker: WorkerConfig;
  log: LogConfig;
  mongo: MongoConfig;
  climate: ClimateConfig;
  curation: CurationConfig;
  workflows: WorkflowsConfig;
  datasets: DatasetsConfig;
}

/**
 * What an override (file or code) may contain: any subset, at any depth. Arrays are replaced
 * whole, never merged, so their element type stays complete.
 */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;
