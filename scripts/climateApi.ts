/**
 * `celeriac climate-api [--port N] [--host H]`: ClimateSERV's job API (workers/jobs/api.ts). Needs
 * MongoDB (mongo.url; `npm run mongo` locally) for the job log and the broker to send jobs to.
 * SIGINT/SIGTERM close the listener and the connections.
 */
import type { Command } from 'commander';
import { appFromConfig, brokerUrlOf, commonOverrides, loadOrExit, loggerFor, type CommonFlags } from '../workers';
import { createClimateApi } from '../workers/jobs/api';
import { openJobContext } from '../workers/jobs/context';

interface ApiFlags extends CommonFlags {
  port?: string;
  host?: string;
}

export function addClimateApiCommand(program: Command): void {
  program
    .command('climate-api')
    .description('Serve the ClimateSERV-compatible climate job API (submitDataRequest, getDataRequestProgress, ...)')
    .option('--port <n>', 'TCP port (config climate.api_port)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-b, --broker <url>', 'broker URL the jobs are sent to')
    .option('--loglevel <level>', 'log level')
    .action(async (flags: ApiFlags) => {
      const port = flags.port === undefined ? undefined : Number(flags.port);
      if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`--port must be a TCP port (1-65535), got ${flags.port}`);
      // The API only sends jobs: results are in the job log, not the result backend.
      const config = loadOrExit({ ...commonOverrides(flags), climate: { api_port: port } });
      const logger = loggerFor(config, 'climate-api');
      const ctx = await openJobContext(config, { logger });
      const producer = appFromConfig(config, logger);
      const api = await createClimateApi({
        log: ctx.log,
        producer,
        datasets: ctx.datasets,
        limits: ctx.limits,
        queue: config.climate.queue,
        brokerUrl: brokerUrlOf(config),
      });
      const address = await api.listen({ port: config.climate.api_port, host: flags.host ?? '127.0.0.1' });
      logger.info(`climate-api listening on ${address} (datasets: ${[...ctx.datasets.keys()].join(', ') || 'none'}; jobs to queue ${config.climate.queue})`);
      const stop = async (): Promise<void> => {
        await api.close();
        await producer.close();
        await ctx.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
