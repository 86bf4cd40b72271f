/**
 * Options of the filesystem transport, and their mapping from Celery's broker_transport_options
 * (kombu's snake_case names and defaults, so one config dict serves Python and Celeriac).
 */

/** The slice of a logger this transport needs (TransportLogger and pino both fit). */
export interface FilesystemTransportLogger {
  warn(msg: string): void;
}

export interface FilesystemTransportOptions {
  /** kombu data_folder_in: where this side consumes from. */
  dataFolderIn: string;
  /** kombu data_folder_out: where this side publishes to. */
  dataFolderOut: string;
  /** kombu control_folder (default 'control'): exchange binding tables. */
  controlFolder?: string;
  /** kombu processed_folder (default 'processed'), used when storeProcessed. */
  processedFolder?: string;
  /** kombu store_processed: keep acked/dropped messages in processedFolder instead of deleting. */
  storeProcessed?: boolean;
  /** Seconds without a heartbeat after which another consumer's claims are restored (3600). */
  visibilityTimeout?: number;
  /** Milliseconds between directory scans when idle (100; fs.watch wakes earlier when it can). */
  pollInterval?: number;
  logger?: FilesystemTransportLogger;
}

function optString(opts: Record<string, unknown>, key: string, fallback: string): string {
  const value = opts[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string') throw new TypeError(`transport option ${key} must be a string`);
  return value;
}

/** Config often arrives from environment variables, so 'false' must not read as true. */
function optBool(opts: Record<string, unknown>, key: string): boolean {
  const value = opts[key];
  if (typeof value === 'string') return /^(1|true|yes|on)$/i.test(value.trim());
  return Boolean(value);
}

function optNumber(opts: Record<string, unknown>, key: string): number | undefined {
  const value = opts[key];
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new TypeError(`transport option ${key} must be a non-negative number`);
  }
  return n;
}

/**
 * data_folder_in ('data_in'), data_folder_out ('data_out'), control_folder ('control'),
 * processed_folder ('processed'), store_processed (false), visibility_timeout (s) and
 * polling_interval (seconds, as in kombu; converted to ms).
 */
export function optionsFromKombu(transportOptions: Record<string, unknown>): FilesystemTransportOptions {
  const polling = optNumber(transportOptions, 'polling_interval');
  return {
    dataFolderIn: optString(transportOptions, 'data_folder_in', 'data_in'),
    dataFolderOut: optString(transportOptions, 'data_folder_out', 'data_out'),
    controlFolder: optString(transportOptions, 'control_folder', 'control'),
    processedFolder: optString(transportOptions, 'processed_folder', 'processed'),
    storeProcessed: optBool(transportOptions, 'store_processed'),
    visibilityTimeout: optNumber(transportOptions, 'visibility_timeout'),
    pollInterval: polling === undefined ? undefined : polling * 1000,
  };
}
