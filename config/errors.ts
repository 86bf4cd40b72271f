/**
 * Start-up configuration errors, worded for the person who has to fix them:
 *   config: celery.worker_concurrency = "abc": must be a positive integer
 * Values are masked (URL passwords, password-named fields) because these messages get logged.
 */
import { maskValue } from '../workers/log/mask';

export interface ConfigIssue {
  /** Dotted key, e.g. `celery.worker_concurrency` (or `APP_ENV` for the loader's own checks); '' if unknown. */
  key: string;
  /** The offending value, already masked. */
  value: unknown;
  /** What was expected, e.g. `must be a positive integer`. */
  expected: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }

  static of(key: string, value: unknown, expected: string): ConfigError {
    return new ConfigError([{ key, value: maskValue(value), expected }]);
  }
}

export function formatIssue(issue: ConfigIssue): string {
  // An issue without a key is a convict message we could not take apart: show it as it is.
  if (issue.key === '') return `config: ${issue.expected}`;
  return `config: ${issue.key} = ${formatValue(issue.value)}: ${issue.expected}`;
}

function formatValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  // JSON would print NaN and Infinity as null, hiding the actual mistake.
  if (typeof value === 'number') return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/**
 * Turn convict's validation message into issues. convict only reports a joined string, one line
 * per problem, in three shapes (see convict's validate()):
 *   <key>: <expectation>[: value was <json>]
 *   configuration param '<key>' not declared in the schema
 *   configuration param '<key>' missing from config, did you override its parent?
 * The value is looked up in the merged config rather than parsed back from the text, because
 * convict leaves it out when it is falsy (0, false, '').
 */
export function issuesFromConvict(message: string, lookup: (key: string) => unknown): ConfigIssue[] {
  return message
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line): ConfigIssue => {
      const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
      if (undeclared !== null) {
        const k = undeclared[1];
        return { key: k, value: maskValue(lookup(k)), expected: 'unknown key (not in the schema; check the spelling)' };
      }
      const missing = /^configuration param '(.+)' missing from config/.exec(line);
      if (missing !== null) {
        return { key: missing[1], value: undefined, expected: 'is required (was its parent object replaced?)' };
      }
      const sep = line.indexOf(': ');
      if (sep === -1) return { key: '', value: undefined, expected: String(maskValue(line)) };
      const k = line.slice(0, sep);
      const rest = line.slice(sep + 2);
      const valueAt = rest.indexOf(': value was ');
      const expected = valueAt === -1 ? rest : rest.slice(0, valueAt);
      return { key: k, value: maskValue(lookup(k)), expected: expected.trim() };
    });
}
