/**
 * The job log in MongoDB: one document per job, as ClimateSERV's Task_Log keeps it (uuid,
 * created_at, request, status, progress, is_errored, errors, warnings, worker, results), plus the
 * history of which worker ran it.
 *
 * Who runs a job is decided by inserting a claim document with a unique _id (`<uuid>#<attempt>`):
 * that insert is atomic on MongoDB and on FerretDB, where findOneAndUpdate and conditional
 * updates are not. Only the claim's winner writes the job's `worker` and results. A later
 * delivery of the same task (acks_late: its worker was killed) may claim the next attempt only
 * once the current claim has gone quiet for the lease: the live worker touches it with every
 * progress write and on a timer.
 */
import type { Collection, Db } from 'mongodb';
import type { JobRequest } from './request';

export type JobStatus = 'Waiting_To_Start' | 'In_Progress' | 'Processing_Complete';

export interface JobAttempt {
  attempt: number;
  worker: string;
  started_at: Date;
  /** Set on the attempt that finished the job; an attempt without it was abandoned. */
  finished_at?: Date;
}

export interface JobResults {
  /** The JSON answer of getDataFromRequest. */
  data_file?: string;
  /** Download jobs: the zip served by getFileForJobID. */
  zip_file?: string;
}

/**
 * The request as stored: the geometry as GeoJSON text, because FerretDB cannot store nested
 * arrays (GeoJSON coordinates are arrays of arrays). `JobLog.get` parses it back.
 */
export type StoredRequest = Omit<JobRequest, 'geometry'> & { geometry: string };

interface StoredJob extends Omit<JobDocument, 'request'> {
  request: StoredRequest;
}

export interface JobDocument {
  _id: string;
  uuid: string;
  created_at: Date;
  updated_at: Date;
  request: JobRequest;
  status: JobStatus;
  /** 0-100 while it runs, 100 when done, -1 on error. */
  progress: number;
  is_errored: boolean;
  errors: string[];
  warnings: string[];
  /** The node name of the worker that holds (or finished) the job. */
  worker: string | null;
  attempts: JobAttempt[];
  results: JobResults;
  /** Statistics jobs spread over the pool: the chunk task ids of the attempt that sent them. */
  chunks?: { attempt: number; ids: string[] };
  completed_at?: Date;
}

interface ClaimDocument {
  _id: string;
  job: string;
  attempt: number;
  worker: string;
  claimed_at: Date;
  touched_at: Date;
}

export const JOBS_COLLECTION = 'climate_jobs';
export const CLAIMS_COLLECTION = 'climate_job_claims';

export type ClaimOutcome =
  | { kind: 'claimed'; claim: JobClaim; takenOverFrom: string | null }
  | { kind: 'done' }
  | { kind: 'busy'; worker: string; quietForMs: number }
  | { kind: 'unknown' };

function parsed(stored: StoredJob): JobDocument {
  return { ...stored, request: { ...stored.request, geometry: JSON.parse(stored.request.geometry) as JobRequest['geometry'] } };
}

const isDuplicateKey = (err: unknown): boolean => (err as { code?: unknown }).code === 11000;

/** The right to write one job, won by a unique insert. */
export class JobClaim {
  constructor(
    private readonly log: JobLog,
    readonly uuid: string,
    readonly attempt: number,
    readonly worker: string,
  ) {}

  /** Keeps the lease fresh; false when a later attempt has taken the job over (stop working). */
  async touch(): Promise<boolean> {
    return this.log.touchClaim(this);
  }
}

export class JobLog {
  readonly jobs: Collection<StoredJob>;
  readonly claims: Collection<ClaimDocument>;

  constructor(db: Db, private readonly leaseMs: number) {
    this.jobs = db.collection<StoredJob>(JOBS_COLLECTION);
    this.claims = db.collection<ClaimDocument>(CLAIMS_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.jobs.createIndex({ created_at: -1 });
    await this.claims.createIndex({ job: 1, attempt: -1 });
  }

  async create(uuid: string, request: JobRequest, now = new Date()): Promise<JobDocument> {
    const doc: JobDocument = {
      _id: uuid,
      uuid,
      created_at: now,
      updated_at: now,
      request,
      status: 'Waiting_To_Start',
      progress: 0,
      is_errored: false,
      errors: [],
      warnings: [],
      worker: null,
      attempts: [],
      results: {},
    };
    await this.jobs.insertOne({ ...doc, request: { ...request, geometry: JSON.stringify(request.geometry) } });
    return doc;
  }

  async get(uuid: string): Promise<JobDocument | null> {
    const stored = await this.jobs.findOne({ _id: uuid });
    return stored && parsed(stored);
  }

  async list(limit: number, status?: JobStatus): Promise<JobDocument[]> {
    const stored = await this.jobs
      .find(status ? { status } : {})
      .sort({ created_at: -1 })
      .limit(limit)
      .toArray();
    return stored.map(parsed);
  }

  private async latestClaim(uuid: string): Promise<ClaimDocument | null> {
    const [latest] = await this.claims.find({ job: uuid }).sort({ attempt: -1 }).limit(1).toArray();
    return latest ?? null;
  }

  /**
   * Tries to make `worker` the job's runner. A finished job, or one whose runner wrote within the
   * lease, is not claimed; a quiet one is taken over by inserting the next attempt's claim (of
   * two workers racing for it, the insert lets exactly one win).
   */
  async claim(uuid: string, worker: string, now = new Date()): Promise<ClaimOutcome> {
    const job = await this.get(uuid);
    if (!job) return { kind: 'unknown' };
    if (job.status === 'Processing_Complete') return { kind: 'done' };
    const latest = await this.latestClaim(uuid);
    if (latest) {
      const quietForMs = now.getTime() - latest.touched_at.getTime();
      if (quietForMs < this.leaseMs) return { kind: 'busy', worker: latest.worker, quietForMs };
    }
    const attempt = (latest?.attempt ?? 0) + 1;
    try {
      await this.claims.insertOne({ _id: `${uuid}#${attempt}`, job: uuid, attempt, worker, claimed_at: now, touched_at: now });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const winner = await this.latestClaim(uuid);
      return { kind: 'busy', worker: winner?.worker ?? 'another worker', quietForMs: 0 };
    }
    const takenOverFrom = latest?.worker ?? null;
    const set: Partial<StoredJob> = { status: 'In_Progress', worker, updated_at: now, progress: 0 };
    await this.jobs.updateOne(
      { _id: uuid },
      {
        $set: set,
        $push: {
          attempts: { attempt, worker, started_at: now },
          ...(takenOverFrom
            ? { warnings: `worker ${takenOverFrom} stopped during attempt ${attempt - 1} (no write for ${Math.round((now.getTime() - latest!.touched_at.getTime()) / 1000)} s); attempt ${attempt} runs on ${worker}` }
            : {}),
        },
      },
    );
    return { kind: 'claimed', claim: new JobClaim(this, uuid, attempt, worker), takenOverFrom };
  }

  /** Refreshes the claim's lease; false when a later attempt exists (this one was taken over). */
  async touchClaim(claim: JobClaim, now = new Date()): Promise<boolean> {
    const latest = await this.latestClaim(claim.uuid);
    if (!latest || latest.attempt !== claim.attempt) return false;
    await this.claims.updateOne({ _id: `${claim.uuid}#${claim.attempt}` }, { $set: { touched_at: now } });
    return true;
  }

  async progress(claim: JobClaim, progress: number): Promise<boolean> {
    if (!(await claim.touch())) return false;
    await this.jobs.updateOne({ _id: claim.uuid, status: 'In_Progress' }, { $set: { progress, updated_at: new Date() } });
    // Another process (a fanned-out job's chord body) may have completed the job between the
    // check above and this write (FerretDB's conditional updates are not atomic): read it back
    // and put the final progress back. Its write came first, so this one is the last word.
    const after = await this.jobs.findOne({ _id: claim.uuid }, { projection: { status: 1, is_errored: 1, progress: 1 } });
    if (after?.status === 'Processing_Complete') {
      const final = after.is_errored ? -1 : 100;
      if (after.progress !== final) await this.jobs.updateOne({ _id: claim.uuid }, { $set: { progress: final } });
    }
    return true;
  }

  /** The chunk tasks an attempt sent (workers/jobs/fanOut.ts); false when it was taken over. */
  async recordChunks(claim: JobClaim, ids: readonly string[]): Promise<boolean> {
    if (!(await claim.touch())) return false;
    await this.jobs.updateOne({ _id: claim.uuid }, { $set: { chunks: { attempt: claim.attempt, ids: [...ids] }, updated_at: new Date() } });
    return true;
  }

  /**
   * A chord body finishing a job on `claim.worker`: when the worker that holds the attempt has
   * gone quiet for the lease (it was killed while the chunks ran elsewhere), the log says so and
   * names the finisher as the job's worker.
   */
  async noteFinisher(claim: JobClaim, now = new Date()): Promise<void> {
    const latest = await this.latestClaim(claim.uuid);
    if (!latest || latest.attempt !== claim.attempt || latest.worker === claim.worker) return;
    const quietForMs = now.getTime() - latest.touched_at.getTime();
    if (quietForMs < this.leaseMs) return;
    await this.jobs.updateOne(
      { _id: claim.uuid },
      {
        $set: { worker: claim.worker, updated_at: now },
        $push: { warnings: `worker ${latest.worker} stopped during attempt ${claim.attempt} (no write for ${Math.round(quietForMs / 1000)} s); its chunks finished on other workers and ${claim.worker} completed the job` },
      },
    );
  }

  async warn(uuid: string, warnings: readonly string[]): Promise<void> {
    if (warnings.length === 0) return;
    await this.jobs.updateOne({ _id: uuid }, { $push: { warnings: { $each: [...warnings] } }, $set: { updated_at: new Date() } });
  }

  /** Records the results; false (nothing written) when the claim was taken over meanwhile. */
  async complete(claim: JobClaim, results: JobResults, now = new Date()): Promise<boolean> {
    if (!(await claim.touch())) return false;
    const job = await this.get(claim.uuid);
    const attempts = (job?.attempts ?? []).map((a) => (a.attempt === claim.attempt ? { ...a, finished_at: now } : a));
    await this.jobs.updateOne(
      { _id: claim.uuid },
      { $set: { status: 'Processing_Complete', progress: 100, results, completed_at: now, updated_at: now, attempts } },
    );
    return true;
  }

  /** Ends the job as errored (progress -1): by its claim holder, or before any claim (enqueue failed). */
  async fail(uuid: string, error: string, claim?: JobClaim, now = new Date()): Promise<boolean> {
    if (claim && !(await claim.touch())) return false;
    await this.jobs.updateOne(
      { _id: uuid },
      { $set: { status: 'Processing_Complete', progress: -1, is_errored: true, completed_at: now, updated_at: now }, $push: { errors: error } },
    );
    return true;
  }
}
