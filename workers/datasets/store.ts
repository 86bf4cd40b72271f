/**
 * Dataset state in MongoDB: typed collections over the official driver. Written to be correct on
 * MongoDB and on FerretDB alike: mutual exclusion comes only from inserts on a unique key
 * (registration), every other write is an unconditional update of one document by _id, and the
 * state history only ever grows ($push).
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { openMongo, type MongoConnection, type MongoConnectOptions } from '../index';
import { DatasetNotFound } from './errors';
import { checkNewDataset, ensureDatasetCollections } from './schema';
import type { DatasetDoc, DatasetFileDoc, DatasetState, DatasetUpdate, InspectionSummary } from './types';

export interface NewDataset {
  name: string;
  type: string;
  origin_path: string;
  create_method?: string;
  metadata?: Record<string, unknown>;
}

export interface CollectionNames {
  datasets: string;
  files: string;
}

export const DEFAULT_COLLECTIONS: CollectionNames = { datasets: 'datasets', files: 'dataset_files' };

/** E11000: the unique index refused a second document with the same key. */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: unknown }).code === 11000;
}

export class DatasetStore {
  readonly datasets: Collection<DatasetDoc>;
  readonly files: Collection<DatasetFileDoc>;

  private constructor(db: Db, names: CollectionNames, readonly validatorEnforced: boolean, private readonly conn?: MongoConnection) {
    this.datasets = db.collection<DatasetDoc>(names.datasets);
    this.files = db.collection<DatasetFileDoc>(names.files);
  }

  /** A store over an open database: creates the collections and indexes if missing. */
  static async on(db: Db, names: CollectionNames = DEFAULT_COLLECTIONS): Promise<DatasetStore> {
    const { validatorEnforced } = await ensureDatasetCollections(db, names);
    return new DatasetStore(db, names, validatorEnforced);
  }

  /** Connects (waiting out a server that is not up yet, see openMongo) and owns the connection. */
  static async connect(url: string, opts: MongoConnectOptions = {}): Promise<DatasetStore> {
    const conn = await openMongo(url, { name: 'datasets', ...opts });
    try {
      const { validatorEnforced } = await ensureDatasetCollections(conn.db, DEFAULT_COLLECTIONS);
      return new DatasetStore(conn.db, DEFAULT_COLLECTIONS, validatorEnforced, conn);
    } catch (err) {
      await conn.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.conn?.close();
  }

  /**
   * Registers a dataset with state REGISTERED. The unique (name, type) index makes this
   * exclusive: `created: false` returns the dataset someone registered before.
   */
  async register(input: NewDataset): Promise<{ dataset: DatasetDoc; created: boolean }> {
    checkNewDataset(input);
    const now = new Date();
    const doc: DatasetDoc = {
      _id: randomUUID(),
      name: input.name,
      type: input.type,
      create_method: input.create_method ?? 'SCAN',
      origin_path: input.origin_path,
      archive_path: null,
      staged_path: null,
      du_size: null,
      size: null,
      num_files: null,
      num_directories: null,
      bundle: null,
      metadata: { ...input.metadata },
      is_staged: false,
      is_deleted: false,
      states: [{ state: 'REGISTERED', timestamp: now, metadata: null }],
      workflows: [],
      workflow_ids: [],
      created_at: now,
      updated_at: now,
    };
    try {
      await this.datasets.insertOne(doc);
      return { dataset: doc, created: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.datasets.findOne({ name: input.name, type: input.type });
      if (!existing) throw err;
      return { dataset: existing, created: false };
    }
  }

  async find(id: string): Promise<DatasetDoc | null> {
    return this.datasets.findOne({ _id: id });
  }

  async get(id: string): Promise<DatasetDoc> {
    const doc = await this.find(id);
    if (!doc) throw new DatasetNotFound(id);
    return doc;
  }

  async findByName(type: string, name: string): Promise<DatasetDoc | null> {
    return this.datasets.findOne({ type, name });
  }

  async update(id: string, fields: DatasetUpdate, metadata: Record<string, unknown> = {}): Promise<void> {
    const set: Record<string, unknown> = { ...fields, updated_at: new Date() };
    // Dotted paths: a task adds its metadata keys without replacing the others'.
    for (const [k, v] of Object.entries(metadata)) set[`metadata.${k}`] = v;
    const res = await this.datasets.updateOne({ _id: id }, { $set: set });
    if (res.matchedCount === 0) throw new DatasetNotFound(id);
  }

  /** Appends to the state history (Bioloop's add_state_to_dataset). */
  async addState(id: string, state: DatasetState, metadata: Record<string, unknown> | null = null): Promise<void> {
    const now = new Date();
    const res = await this.datasets.updateOne({ _id: id }, { $push: { states: { state, timestamp: now, metadata } }, $set: { updated_at: now } });
    if (res.matchedCount === 0) throw new DatasetNotFound(id);
  }

  /** The last state reached (the history is in the order it was written). */
  static currentState(doc: DatasetDoc): DatasetState | undefined {
    return doc.states.at(-1)?.state;
  }

  async saveInspection(id: string, summary: InspectionSummary): Promise<void> {
    const { num_genome_files, ...fields } = summary;
    await this.update(id, fields, { num_genome_files });
  }

  /**
   * Replaces the dataset's file list, written in batches so a large tree never becomes one huge
   * request. A retried inspection first removes what an interrupted one wrote.
   */
  async replaceFiles(id: string, files: AsyncIterable<Omit<DatasetFileDoc, '_id' | 'dataset_id'>> | Iterable<Omit<DatasetFileDoc, '_id' | 'dataset_id'>>, batchSize: number): Promise<number> {
    await this.files.deleteMany({ dataset_id: id });
    let batch: DatasetFileDoc[] = [];
    let written = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.files.insertMany(batch, { ordered: false });
      written += batch.length;
      batch = [];
    };
    for await (const f of files) {
      batch.push({ _id: `${id}/${f.path}`, dataset_id: id, ...f });
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    return written;
  }

  /** The dataset's files in path order, streamed from a cursor. */
  listFiles(id: string): AsyncIterable<DatasetFileDoc> {
    return this.files.find({ dataset_id: id }).sort({ path: 1 });
  }

  async countFiles(id: string): Promise<number> {
    return this.files.countDocuments({ dataset_id: id });
  }

  async addWorkflow(id: string, workflow: { id: string; name: string }): Promise<void> {
    const now = new Date();
    const res = await this.datasets.updateOne(
      { _id: id },
      { $push: { workflows: { id: workflow.id, name: workflow.name, created_at: now } }, $addToSet: { workflow_ids: workflow.id }, $set: { updated_at: now } },
    );
    if (res.matchedCount === 0) throw new DatasetNotFound(id);
  }

  /** Datasets of a type that no workflow was started for yet (a watcher that died mid-registration). */
  async withoutWorkflow(type: string): Promise<DatasetDoc[]> {
    return this.datasets.find({ type, workflow_ids: { $size: 0 }, is_deleted: false }).sort({ created_at: 1 }).toArray();
  }

  /** Which of these workflow ids some dataset references. */
  async referencedWorkflowIds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const docs = await this.datasets.find({ workflow_ids: { $in: ids } }, { projection: { workflow_ids: 1 } }).toArray();
    const wanted = new Set(ids);
    return new Set(docs.flatMap((d) => d.workflow_ids.filter((w) => wanted.has(w))));
  }

  /** Bioloop's delete: archive gone, flagged, renamed `name-id` so the name can be registered again. */
  async markDeleted(doc: DatasetDoc): Promise<void> {
    const now = new Date();
    const name = doc.name.endsWith(`-${doc._id}`) ? doc.name : `${doc.name}-${doc._id}`;
    await this.datasets.updateOne({ _id: doc._id }, { $set: { archive_path: null, is_deleted: true, name, updated_at: now } });
    await this.addState(doc._id, 'DELETED');
  }
}
