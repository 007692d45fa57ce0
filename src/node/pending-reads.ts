/**
 * Linearizable reads in flight (ReadIndex, Raft thesis section 6.4): each waits for the
 * core to confirm a read index, then for the applied index to reach it. They time out by
 * deadline on the node's tick (deadlines.ts).
 */
import { expireDeadlines, type Deadline } from "./deadlines.js";

const requestIdEncoder = new TextEncoder();
const requestIdDecoder = new TextDecoder();

interface Read extends Deadline {
  resolve(): void;
  /** Set once the core confirmed leadership for this read. */
  index?: number;
}

export class PendingReads {
  private nextId = 1;
  private readonly byId = new Map<string, Read>();

  get size(): number {
    return this.byId.size;
  }

  /** Registers a read begun at `nowMs`; returns its request id (to pass to the core) and its promise. */
  add(timeoutMs: number, nowMs: number): { requestId: Uint8Array; done: Promise<void> } {
    const id = String(this.nextId++);
    const done = new Promise<void>((resolve, reject) => {
      this.byId.set(id, { resolve, reject, deadlineMs: nowMs + timeoutMs, timeoutMs });
    });
    return { requestId: requestIdEncoder.encode(id), done };
  }

  /** Rejects the reads whose deadline is at or before `nowMs`. */
  expire(nowMs: number): void {
    expireDeadlines(this.byId, nowMs, () => "linearizable read");
  }

  /** The core confirmed the read `requestId` at `index`. */
  confirmed(requestId: Uint8Array, index: number, appliedIndex: number): void {
    const read = this.byId.get(requestIdDecoder.decode(requestId));
    if (!read) return;
    read.index = index;
    this.appliedTo(appliedIndex);
  }

  /** Completes every confirmed read whose index is now applied. */
  appliedTo(appliedIndex: number): void {
    for (const [id, read] of this.byId) {
      if (read.index === undefined || read.index > appliedIndex) continue;
      this.byId.delete(id);
      read.resolve();
    }
  }

  /** Reads the core has not confirmed yet will not be (leadership changed): fail them now. */
  rejectUnconfirmed(error: () => Error): void {
    for (const [id, read] of this.byId) {
      if (read.index !== undefined) continue;
      this.byId.delete(id);
      read.reject(error());
    }
  }

  rejectAll(error: Error): void {
    for (const read of this.byId.values()) {
      read.reject(error);
    }
    this.byId.clear();
  }
}
