/**
 * A step's progress in bytes over sca-rhythm's Progress (workers/workflows): callers report from
 * hot loops (every md5 chunk) without awaiting, so a report is skipped while the previous one is
 * still being written; Progress itself keeps to one a second.
 */
import { Progress } from '../workflows';

export type ProgressSink = (meta: object) => Promise<void>;

export class StepProgress {
  private writing = false;
  private readonly progress: Progress;

  constructor(sink: ProgressSink, name: string, total: number | null, units = 'bytes') {
    this.progress = new Progress({ name, total, units, report: sink });
  }

  update(done: number): void {
    if (this.writing) return;
    this.writing = true;
    // A failed progress write never fails the step.
    this.progress.update(done).catch(() => undefined).finally(() => (this.writing = false));
  }
}
