/**
 * Proposals waiting for their entry to be applied. A proposal made as leader in term T
 * at index i succeeded iff the entry applied at index i has term T (Raft paper, 5.3:
 * log matching); any other entry at i means it was overwritten by another leader.
 *
 * Timeouts are deadlines checked by `expire(now)` on the node's tick, not a timer each:
 * setting and clearing a timer per proposal (timer list inserts and removals) showed in
 * the leader's profiles at high client counts, under 1% each; one scan per tick replaces
 * them. A proposal times out at most one tick late.
 */
import { proposalLostError, timeoutError } from "./errors.js";

interface Waiter<Result> {
  term: number;
  resolve(result: Result): void;
  reject(error: Error): void;
  /** When it times out (the clock `expire` is given). */
  deadlineMs: number;
  timeoutMs: number;
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
    for (const [index, waiter] of this.byIndex) {
      if (waiter.deadlineMs > nowMs) continue;
      this.byIndex.delete(index);
      waiter.reject(timeoutError(`proposal at index ${index}`, waiter.timeoutMs));
    }
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
