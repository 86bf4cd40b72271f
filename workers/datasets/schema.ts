/**
 * The `datasets` collection's validator ($jsonSchema) and indexes. MongoDB enforces the validator;
 * FerretDB 1.24 does not implement validators (createCollection answers NotImplemented), so the
 * store also checks every new dataset in code (checkNewDataset) before it writes one.
 */
import type { Db, IndexDescription } from 'mongodb';
import { DATASET_STATES, type DatasetDoc } from './types';

const nullableString = { bsonType: ['string', 'null'] };
const nullableCount = { bsonType: ['int', 'long', 'double', 'null'], minimum: 0 };

export const DATASET_VALIDATOR = {
  $jsonSchema: {
    bsonType: 'object',
    required: ['_id', 'name', 'type', 'origin_path', 'metadata', 'is_staged', 'is_deleted', 'states', 'workflow_ids', 'created_at'],
    properties: {
      _id: { bsonType: 'string' },
      name: { bsonType: 'string', minLength: 1 },
      type: { bsonType: 'string', minLength: 1 },
      origin_path: { bsonType: 'string', minLength: 1 },
      archive_path: nullableString,
      staged_path: nullableString,
      du_size: nullableCount,
      size: nullableCount,
      num_files: nullableCount,
      num_directories: nullableCount,
      bundle: {
        bsonType: ['object', 'null'],
        required: ['name', 'size', 'md5'],
        properties: { name: { bsonType: 'string' }, size: { bsonType: ['int', 'long', 'double'] }, md5: { bsonType: 'string' } },
      },
      metadata: { bsonType: 'object' },
      is_staged: { bsonType: 'bool' },
      is_deleted: { bsonType: 'bool' },
      states: {
        bsonType: 'array',
        items: {
          bsonType: 'object',
          required: ['state', 'timestamp'],
          properties: { state: { enum: [...DATASET_STATES] }, timestamp: { bsonType: 'date' } },
        },
      },
      workflow_ids: { bsonType: 'array', items: { bsonType: 'string' } },
      created_at: { bsonType: 'date' },
      updated_at: { bsonType: 'date' },
    },
  },
};

/** Each index names the query it serves. */
export const DATASET_INDEXES: IndexDescription[] = [
  // Registration is an insert that this index makes exclusive (the watch script's idempotence);
  // delete_dataset renames the dataset (`name-id`) so the name can be registered again.
  { key: { name: 1, type: 1 }, name: 'name_type_unique', unique: true },
  // purge-stale-workflows: which of these workflows does some dataset still reference?
  { key: { workflow_ids: 1 }, name: 'workflow_ids' },
  // The watch script's restart pass: datasets of a type still without a workflow.
  { key: { type: 1, workflow_ids: 1, created_at: 1 }, name: 'type_workflows_created' },
];

export const FILE_INDEXES: IndexDescription[] = [
  { key: { dataset_id: 1, path: 1 }, name: 'dataset_path_unique', unique: true },
];

/** Error code MongoDB servers answer for a feature they lack (FerretDB: validators). */
const NOT_IMPLEMENTED = 238;

/** Creates the collections (with the validator where the server supports one) and their indexes. */
export async function ensureDatasetCollections(db: Db, names: { datasets: string; files: string }): Promise<{ validatorEnforced: boolean }> {
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  let validatorEnforced = true;
  if (!existing.has(names.datasets)) {
    try {
      await db.createCollection(names.datasets, { validator: DATASET_VALIDATOR, validationLevel: 'strict' });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === NOT_IMPLEMENTED) {
        validatorEnforced = false;
        await db.createCollection(names.datasets).catch(ignoreExists);
      } else if (!isAlreadyExists(err)) throw err;
    }
  } else {
    const [info] = await db.listCollections({ name: names.datasets }).toArray();
    validatorEnforced = Boolean((info as { options?: { validator?: unknown } } | undefined)?.options?.validator);
  }
  // One index per call: FerretDB 1.24 panics (and drops the connection) on a createIndexes of
  // several indexes that all exist already, i.e. on every start after the first.
  for (const index of DATASET_INDEXES) await db.collection(names.datasets).createIndexes([index]);
  for (const index of FILE_INDEXES) await db.collection(names.files).createIndexes([index]);
  return { validatorEnforced };
}

function isAlreadyExists(err: unknown): boolean {
  return (err as { code?: unknown }).code === 48;
}

function ignoreExists(err: unknown): void {
  if (!isAlreadyExists(err)) throw err;
}

/** The code-side check for servers that do not enforce the validator: the fields a dataset must have. */
export function checkNewDataset(doc: Pick<DatasetDoc, 'name' | 'type' | 'origin_path'>): void {
  const problems: string[] = [];
  if (typeof doc.name !== 'string' || doc.name.length === 0) problems.push('name must be a non-empty string');
  else if (doc.name.includes('/') || doc.name === '.' || doc.name === '..') problems.push(`name ${JSON.stringify(doc.name)} must be a single path component`);
  if (typeof doc.type !== 'string' || doc.type.length === 0) problems.push('type must be a non-empty string');
  if (typeof doc.origin_path !== 'string' || !doc.origin_path.startsWith('/')) problems.push('origin_path must be an absolute path');
  if (problems.length) throw new TypeError(`invalid dataset: ${problems.join('; ')}`);
}
