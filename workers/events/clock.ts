/**
 * kombu's LamportClock (kombu/clocks.py): the logical clock every Celery event carries, so
 * monitors can order events from many nodes whose wall clocks disagree.
 */
export class LamportClock {
  constructor(public value = 0) {}

  /** Before sending: the next value. */
  forward(): number {
    return ++this.value;
  }

  /** On receiving another node's value: jump past it. */
  adjust(other: number): number {
    this.value = Math.max(this.value, other) + 1;
    return this.value;
  }
}
