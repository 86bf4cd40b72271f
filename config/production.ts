/** Overrides for APP_ENV=production, deep-merged over common.ts (only what differs). */
import type { Config, DeepPartial } from './types';

const production: DeepPartial<Config> = {
  celery: {
    // Production runs against redis; CELERY_BROKER_URL / CELERY_RESULT_BACKEND override these.
    broker_url: 'redis://localhost:6379/0',
    result_backend: 'redis://localhost:6379/1',
  },
  worker: {
    loglevel: 'warn',
  },
  log: {
    level: 'warn',
    // JSON lines for log shippers; development prints Celery-style text.
    pretty: false,
  },
};

export default production;
