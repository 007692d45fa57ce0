/**
 * Proposals waiting for their entry to be applied. A proposal made as leader in term T
 * at index i succeeded iff the entry applied at index i has term T (Raft paper, 5.3:
 * log matching); any other entry at i means it was overwritten by another leader.
 */
import { proposalLostError, timeoutError } from "./errors.js";

interface Waiter<Result> {
  term: number;
  resolve(result: Result): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class PendingProposals<Result> {
  private readonly byIndex = new Map<number, Waiter<Result>>();

  get size(): number {
    return this.byIndex.size;
  }

  add(index: number, term: number, timeoutMs: number): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byIndex.delete(index);
        reject(timeoutError(`proposal at index ${index}`, timeoutMs));
      }, timeoutMs);
      timer.unref();
      this.byIndex.set(index, { term, resolve, reject, timer });
    });
  }

  /** The entry (index, term) was applied with `result`. */
  applied(index: number, term: number, result: Result): void {
    const waiter = this.byIndex.get(index);
    if (!waiter) return;
    this.byIndex.delete(index);
    clearTimeout(waiter.timer);
    if (waiter.term === term) waiter.resolve(result);
    else waiter.reject(proposalLostError(index, waiter.term, term));
  }

  /** A snapshot covering up to `index` was installed: proposals at or below it have an unknown fate. */
  skippedTo(index: number, error: () => Error): void {
    for (const [i, waiter] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      clearTimeout(waiter.timer);
      waiter.reject(error());
    }
  }

  rejectAll(error: Error): void {
    for (const waiter of this.byIndex.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.byIndex.clear();
  }
}
