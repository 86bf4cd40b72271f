// pm2 process file (first version; autoscale and lifecycle details come later).
// `npx pm2 start ecosystem.config.js` starts one worker; `npx pm2 stop celeriac-worker` sends
// SIGINT, which is a warm shutdown: running tasks finish, reserved messages go back to the queue.
module.exports = {
  apps: [
    {
      name: 'celeriac-worker',
      script: 'bin/celeriac.js',
      args: 'worker -O fair -Q celery -n celeriac-w1@%h',
      // Long enough for running tasks to finish on a warm shutdown before pm2 sends SIGKILL.
      kill_timeout: 60_000,
      exp_backoff_restart_delay: 200,
      max_restarts: 20,
      autorestart: true,
      env: { APP_ENV: 'development' },
      env_production: { APP_ENV: 'production' },
    },
  ],
};
