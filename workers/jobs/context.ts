/**
 * What the API, the job task and `celeriac jobs` share: the job log on MongoDB and the checked
 * dataset registry, from one validated config. MongoDB is required: an unreachable server is a
 * MongoUnavailableError naming the host (`npm run mongo` serves one locally).
 */
import type { Config } from '../../config/types';
import { openMongo, type MongoConnection } from '../index';
import { datasetRegistry, type Dataset } from './datasets';
import { JobLog } from './log';
import type { RequestLimits } from './request';

export interface JobContext {
  mongo: MongoConnection;
  log: JobLog;
  datasets: ReadonlyMap<number, Dataset>;
  limits: RequestLimits;
  outputDir: string;
  leaseMs: number;
  close(): Promise<void>;
}

export interface OpenContextOptions {
  logger?: { info(msg: string): void; warn(msg: string): void };
  /** Give up after this many connection attempts (one-shot commands); default: keep trying. */
  maxAttempts?: number;
}

export async function openJobContext(config: Config, opts: OpenContextOptions = {}): Promise<JobContext> {
  // Checked before connecting: a bad registry is a config error, whatever the database does.
  const datasets = datasetRegistry(config.climate.datasets);
  const mongo = await openMongo(config.mongo.url, { dbName: config.mongo.db, name: 'climate job log', logger: opts.logger, maxAttempts: opts.maxAttempts });
  const leaseMs = config.climate.job_lease_seconds * 1000;
  const log = new JobLog(mongo.db, leaseMs);
  await log.ensureIndexes();
  return {
    mongo,
    log,
    datasets,
    limits: { maxAreaKm2: config.climate.max_area_km2, maxYears: config.climate.max_years },
    outputDir: config.climate.output_dir,
    leaseMs,
    close: () => mongo.close(),
  };
}
