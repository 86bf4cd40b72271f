// pm2 process file in the Bioloop shape: `npx pm2 start ecosystem.config.js [--env production]`.
// Build first (`npm run build`): bin/celeriac.js runs the compiled dist/ when there is one, and the
// TypeScript sources through tsx only when there is not.
//
// - celeriac-worker: `-O fair --autoscale=8,2` on one queue, a node name per app, a pidfile.
//   `npx pm2 stop celeriac-worker` sends SIGINT, a warm shutdown: running tasks finish, reserved
//   messages go back to the queue. kill_timeout is how long pm2 lets that take before SIGKILL:
//   make it longer than your longest task.
// - celeriac-climate-api: the ClimateSERV-compatible job API (`celeriac climate-api`), on
//   climate.api_port (CELERIAC_CLIMATE_API_PORT, 8095). It needs MongoDB (CELERIAC_MONGO_URL) and
//   the datasets (CELERIAC_CLIMATE_DATASETS); the workers that run its jobs load
//   `-A workers/tasks/climateJobs` and consume climate.queue (default `celery`); with a Redis (or
//   file) result backend their statistics jobs are spread over every worker's pool as chunk tasks.
// - celeriac-fleet-report: an example periodic script (cron_restart, autorestart: false): every
//   15 minutes it logs the workers on the broker (`celeriac workers list`).
//
// - With CELERIAC_PM2_DATASETS=1 (and APP_ENV=bioloop for Bioloop's worker settings), two more,
//   as Bioloop runs them: celeriac-watch (`celeriac watch`: new directories under
//   datasets.watch_root become datasets and start their workflow; safe to restart) and
//   celeriac-purge-stale-workflows (cron, daily at 07:00). Both need MongoDB (mongo.url).
//
// The broker and backend come from config/ (APP_ENV picks config/<env>.ts), .env, or the
// environment pm2 is started with (CELERY_BROKER_URL, CELERY_RESULT_BACKEND, ...).
const fs = require('node:fs');
const path = require('node:path');

if (!fs.existsSync(path.join(__dirname, 'dist', 'scripts', 'celeriac.js'))) {
  console.warn('celeriac: dist/ is not built, so these apps run the TypeScript sources through tsx; `npm run build` first in production.');
}

const LOG_DIR = process.env.CELERIAC_LOG_DIR || path.join(__dirname, 'logs');
const QUEUE = process.env.CELERIAC_PM2_QUEUE || 'celery';
const APP = 'celeriac';

const logs = (name) => ({
  out_file: path.join(LOG_DIR, `${name}.out.log`),
  error_file: path.join(LOG_DIR, `${name}.err.log`),
  merge_logs: true,
  time: true,
});

const envs = {
  env: { APP_ENV: 'development' },
  env_production: { APP_ENV: 'production' },
};

// Dataset apps (opt-in: they need MongoDB and the datasets.* directories).
const datasetApps = process.env.CELERIAC_PM2_DATASETS
  ? [
      {
        name: `${APP}-watch`,
        cwd: __dirname,
        script: 'bin/celeriac.js',
        args: 'watch',
        kill_timeout: 10_000,
        exp_backoff_restart_delay: 100,
        max_restarts: 20,
        autorestart: true,
        ...logs(`${APP}-watch`),
        ...envs,
      },
      {
        name: `${APP}-purge-stale-workflows`,
        cwd: __dirname,
        script: 'bin/celeriac.js',
        args: 'purge-stale-workflows',
        cron_restart: '00 07 * * *',
        autorestart: false,
        ...logs(`${APP}-purge-stale-workflows`),
        ...envs,
      },
    ]
  : [];

module.exports = {
  apps: [
    {
      name: `${APP}-worker`,
      cwd: __dirname,
      script: 'bin/celeriac.js',
      args: `worker -O fair --autoscale=8,2 -Q ${QUEUE} -n ${APP}-w1@%h --pidfile ${path.join(__dirname, 'data', `${APP}-w1.pid`)}`,
      kill_timeout: 120_000,
      // 100 ms, 150 ms, ... up to 15 s between restarts of a crashing worker; reset once it runs.
      exp_backoff_restart_delay: 100,
      max_restarts: 20,
      autorestart: true,
      ...logs(`${APP}-worker`),
      ...envs,
    },
    {
      name: `${APP}-climate-api`,
      cwd: __dirname,
      script: 'bin/celeriac.js',
      args: 'climate-api',
      kill_timeout: 10_000,
      exp_backoff_restart_delay: 100,
      max_restarts: 20,
      autorestart: true,
      ...logs(`${APP}-climate-api`),
      ...envs,
    },
    {
      name: `${APP}-fleet-report`,
      cwd: __dirname,
      script: 'bin/celeriac.js',
      args: 'workers list --timeout 2',
      cron_restart: '*/15 * * * *',
      autorestart: false,
      ...logs(`${APP}-fleet-report`),
      ...envs,
    },
    ...datasetApps,
  ],
};
