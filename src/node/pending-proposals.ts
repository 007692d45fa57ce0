/**
 * Proposals waiting for their entry to be applied. A proposal made as leader in term T
 * at index i succeeded iff the entry applied at index i has term T (Raft paper, 5.3:
 * log matching); any other entry at i means it was overwritten by another leader.
 * They time out by deadline on the node's tick (deadlines.ts).
 */
import { expireDeadlines, type Deadline } from "./deadlines.js";
import { proposalLostError } from "./errors.js";

interface Waiter<Result> extends Deadline {
  term: number;
  resolve(result: Result): void;
}

export class PendingProposals<Result> {
  private readonly byIndex = new Map<number, Waiter<Result>>();

  get size(): number {
    return this.byIndex.size;
  }

  /** Waits for the entry at `index`, proposed at `nowMs`; times out once `expire` sees `timeoutMs` passed. */
  add(index: number, term: number, timeoutMs: number, nowMs: number): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.byIndex.set(index, { term, resolve, reject, deadlineMs: nowMs + timeoutMs, timeoutMs });
    });
  }

  /** Rejects the proposals whose deadline is at or before `nowMs`. */
  expire(nowMs: number): void {
    expireDeadlines(this.byIndex, nowMs, (index) => `proposal at index ${index}`);
  }

  /** The entry (index, term) was applied with `result`. */
  applied(index: number, term: number, result: Result): void {
    const waiter = this.byIndex.get(index);
    if (!waiter) return;
    this.byIndex.delete(index);
    if (waiter.term === term) waiter.resolve(result);
    else waiter.reject(proposalLostError(index, waiter.term, term));
  }

  /** A snapshot covering up to `index` was installed: proposals at or below it have an unknown fate. */
  skippedTo(index: number, error: () => Error): void {
    for (const [i, waiter] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      waiter.reject(error());
    }
  }

  rejectAll(error: Error): void {
    for (const waiter of this.byIndex.values()) {
      waiter.reject(error);
    }
    this.byIndex.clear();
  }
}
