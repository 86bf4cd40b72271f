/**
 * Defaults for every environment, tuned for local development: the filesystem broker and file
 * result backend need no server. This file is the single source of default values (the schema
 * only validates); `config/<APP_ENV>.ts` is deep-merged over it.
 */
import os from 'os';
import type { Config } from './types';

const common: Config = {
  celery: {
    broker_url: 'filesystem://',
    result_backend: 'file://./data/results',
    broker_transport_options: {
      visibility_timeout: 3600,
      global_keyprefix: '',
      priority_steps: [0, 3, 6, 9],
      sep: '\x06\x16',
      fanout_prefix: true,
      fanout_patterns: true,
      // In and out are the same folder so one process can both publish and consume locally.
      data_folder_in: './data/broker/out',
      data_folder_out: './data/broker/out',
      control_folder: './data/broker/control',
      processed_folder: './data/broker/processed',
      store_processed: false,
      unacked_restore_interval: 10,
      // kombu's default: a restorer killed mid-sweep blocks other restorers this long at most.
      unacked_mutex_expire: 300,
      // kombu's default: results of tasks acked already go out without a publisher confirm.
      confirm_publish: false,
      // sentinel:// brokers (kombu's names): the monitored master's name, the Sentinels' own auth.
      master_name: '',
      sentinel_kwargs: null,
    },
    // Which URL of a failover list (';'-separated or a list) comes next after a node is lost.
    broker_failover_strategy: 'round-robin',
    // Flower's broker_api (RabbitMQ management API): unacked counts for `celeriac queues`; off unless set.
    broker_api: null,
    result_expires: 86400,
    result_extended: false,
    task_default_queue: 'celery',
    // x-max-priority of the queues this worker declares on AMQP (null = no priority queue).
    task_queue_max_priority: null,
    // Celery's task_queues: null = one queue per -Q name, declared as Celery declares a missing
    // queue (a direct exchange and routing key of the same name).
    task_queues: null,
    // Type of queues declared for -Q names not in task_queues: classic or quorum (AMQP).
    task_create_missing_queue_type: 'classic',
    task_acks_late: false,
    task_reject_on_worker_lost: false,
    task_track_started: false,
    task_ignore_result: false,
    task_serializer: 'json',
    result_serializer: 'json',
    accept_content: ['json', 'msgpack', 'yaml'],
    task_soft_time_limit: null,
    task_time_limit: null,
    // Celery's default: one slot per CPU.
    worker_concurrency: os.availableParallelism(),
    worker_prefetch_multiplier: 4,
    // Celery's default: no task events unless -E; worker heartbeats are sent either way.
    worker_send_task_events: false,
    worker_state_db: null,
    worker_max_tasks_per_child: null,
    worker_max_memory_per_child: null,
    broker_connection_retry_on_startup: true,
    result_backend_transport_options: {},
    redis_backend_use_ssl: null,
    mongodb_backend_settings: null,
    broker_use_ssl: null,
    task_routes: {},
  },
  worker: {
    hostname: 'celeriac@%h',
    queues: ['celery'],
    tasks: ['./workers/tasks/demo'],
    pidfile: null,
    pool: 'async',
    autoscale: null,
    autoscale_keepalive: 30,
    optimization: 'default',
    loglevel: 'info',
    // Prometheus /metrics is opt-in (--metrics-port): no listening socket unless asked for.
    metrics_port: null,
  },
  log: {
    level: 'info',
    pretty: true,
  },
  mongo: {
    url: 'mongodb://127.0.0.1:27017/celeriac',
    // null: the database named in mongo.url (as pymongo's get_default_database), else 'celeriac'.
    db: null,
  },
  climate: {
    // Empty until the deployer names its datasets (CELERIAC_CLIMATE_DATASETS): every datatype is a 400.
    datasets: {},
    output_dir: './data/climate',
    // Roughly Africa's area: a continent-sized polygon is the largest request that makes sense.
    max_area_km2: 30_000_000,
    max_years: 20,
    queue: 'celery',
    api_port: 8095,
    job_lease_seconds: 60,
  },
  // cBottle's ERA5 preparation: hourly 1940-2100, one day per chunk, ERA5 file names.
  curation: {
    index: 'index.csv',
    file_pattern: String.raw`^e5\.oper\.an\.(?:sfc|pl)\.(?<table>\d+)_(?<param>\d+)_(?<name>\w+)\.ll025(?:sc|uv)\.(?<start>\d{10})_(?<end>\d{10})\.nc$`,
    regrid_command: 'cdo -s remapbil,r360x180 {input} {output}',
    regrid_output: './data/regridded',
    zarr: './data/curated.zarr',
    variables: ['2t', '10u', '10v', 'msl', 'tcwv'],
    level_variables: [],
    levels: 37,
    grid: '180x360',
    grid_dims: ['lat', 'lon'],
    time_start: '1940-01-01T00:00:00Z',
    time_end: '2100-01-01T00:00:00Z',
    time_step_minutes: 60,
    time_chunk: 24,
  },
  workflows: {
    app_id: 'celeriac',
    // Bioloop's registry (its task names, so a step can move between Python and Celeriac), and a
    // demo of demo steps (`celeriac workflows demo`).
    registry: {
      integrated: {
        steps: [
          { name: 'await stability', task: 'await_stability' },
          { name: 'inspect', task: 'inspect_dataset' },
          { name: 'archive', task: 'archive_dataset' },
          { name: 'stage', task: 'stage_dataset' },
          { name: 'validate', task: 'validate_dataset' },
          { name: 'setup_download', task: 'setup_dataset_download' },
        ],
      },
      stage: {
        steps: [
          { name: 'stage', task: 'stage_dataset' },
          { name: 'validate', task: 'validate_dataset' },
          { name: 'setup_download', task: 'setup_dataset_download' },
        ],
      },
      delete: { steps: [{ name: 'delete', task: 'delete_dataset' }] },
      demo: {
        description: 'three demo steps with progress, no data needed',
        steps: [
          { name: 'prepare', task: 'workflow_demo.step', kwargs: { seconds: 2 } },
          { name: 'process', task: 'workflow_demo.step', kwargs: { seconds: 3 } },
          { name: 'finish', task: 'workflow_demo.step', kwargs: { seconds: 1 } },
        ],
      },
    },
  },
  datasets: {
    type: 'RAW_DATA',
    watch_root: './data/datasets/incoming',
    archive_dir: './data/datasets/archive',
    bundle_dir: './data/datasets/bundles',
    staging_dir: './data/datasets/staging',
    download_dir: './data/datasets/download',
    rejects: ['.snapshots'],
    // Bioloop's values: an hour without change, checked every five minutes.
    recency_threshold_seconds: 3600,
    stability_check_interval_seconds: 300,
    poll_interval_seconds: 10,
    full_scan_every_n_scans: 90,
    file_batch_size: 1000,
    stage_alias_salt: '',
    genome_file_types: ['.cbcl', '.bcl', '.bcl.gz', '.bgzf', '.fastq.gz', '.bam', '.bam.bai', '.vcf.gz', '.vcf.gz.tbi', '.vcf'],
    workflow: 'integrated',
    retry_delay_seconds: 5,
    purge: {
      workflow_types: ['integrated', 'stage', 'delete'],
      age_threshold_seconds: 86400,
      max_purge_count: 10,
    },
  },
};

export default common;
