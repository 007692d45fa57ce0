/**
 * Requests waiting for a leader to be known. Right after a start (and during any election)
 * no node knows a leader for an election timeout or two; a proposal or read made then
 * waits for one, up to its own timeout, instead of failing at once with "leader: unknown"
 * (an error the caller could only answer by retrying). The node resolves the waiters when
 * the core reports a leader, and rejects them when it stops.
 */
interface Waiter {
  resolve(leader: number): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class LeaderWaiters {
  private readonly waiters = new Set<Waiter>();

  get size(): number {
    return this.waiters.size;
  }

  /** Resolves with the leader's id once one is known; rejects with `onTimeout()` after `timeoutMs`. */
  wait(timeoutMs: number, onTimeout: () => Error): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(onTimeout());
        }, Math.max(0, timeoutMs)),
      };
      waiter.timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** The core reports `leader` (0: none yet). */
  leaderKnown(leader: number): void {
    if (leader === 0) return;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(leader);
    }
    this.waiters.clear();
  }

  rejectAll(error: Error): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.waiters.clear();
  }
}
