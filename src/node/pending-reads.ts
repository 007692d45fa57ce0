/**
 * Linearizable reads in flight (ReadIndex, Raft thesis section 6.4): each waits for the
 * core to confirm a read index, then for the applied index to reach it.
 */
import { timeoutError } from "./errors.js";

interface Read {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  /** Set once the core confirmed leadership for this read. */
  index?: number;
}

export class PendingReads {
  private nextId = 1;
  private readonly byId = new Map<string, Read>();

  get size(): number {
    return this.byId.size;
  }

  /** Registers a read; returns its request id (to pass to the core) and its promise. */
  add(timeoutMs: number): { requestId: Uint8Array; done: Promise<void> } {
    const id = String(this.nextId++);
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byId.delete(id);
        reject(timeoutError("linearizable read", timeoutMs));
      }, timeoutMs);
      timer.unref();
      this.byId.set(id, { resolve, reject, timer });
    });
    return { requestId: new TextEncoder().encode(id), done };
  }

  /** The core confirmed the read `requestId` at `index`. */
  confirmed(requestId: Uint8Array, index: number, appliedIndex: number): void {
    const read = this.byId.get(new TextDecoder().decode(requestId));
    if (!read) return;
    read.index = index;
    this.appliedTo(appliedIndex);
  }

  /** Completes every confirmed read whose index is now applied. */
  appliedTo(appliedIndex: number): void {
    for (const [id, read] of this.byId) {
      if (read.index === undefined || read.index > appliedIndex) continue;
      this.byId.delete(id);
      clearTimeout(read.timer);
      read.resolve();
    }
  }

  /** Reads the core has not confirmed yet will not be (leadership changed): fail them now. */
  rejectUnconfirmed(error: () => Error): void {
    for (const [id, read] of this.byId) {
      if (read.index !== undefined) continue;
      this.byId.delete(id);
      clearTimeout(read.timer);
      read.reject(error());
    }
  }

  rejectAll(error: Error): void {
    for (const read of this.byId.values()) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    this.byId.clear();
  }
}
