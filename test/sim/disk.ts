/**
 * A simulated node's disk: the core's MemoryStorage (log, hard state, newest
 * snapshot) plus the incoming snapshot being received in chunks. Whatever is written
 * here survives a crash; everything else a node holds does not. All storage writes
 * of the host go through this file, so it is the one place that knows MemoryStorage's
 * writer API.
 */
import { MemoryStorage } from "../../src/raft/index.js";
import type { Entry, HardState, SnapshotChunk, SnapshotMeta } from "../../src/raft/types.js";

interface IncomingSnapshot {
  meta: SnapshotMeta;
  parts: Uint8Array[];
  bytes: number;
  done: boolean;
}

function sameMeta(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term && a.sizeBytes === b.sizeBytes;
}

export class SimDisk {
  readonly storage = new MemoryStorage();
  private incoming: IncomingSnapshot | undefined;
  /** Chunks written, for tests that check a snapshot really went in several chunks. */
  snapshotChunksWritten = 0;
  snapshotsInstalled = 0;
  snapshotsTaken = 0;

  /** Appends a chunk to the pending incoming snapshot; a chunk at offset 0 starts a new one. */
  writeSnapshotChunk(chunk: SnapshotChunk): void {
    this.snapshotChunksWritten += 1;
    if (chunk.offset === 0) {
      this.incoming = { meta: chunk.meta, parts: [], bytes: 0, done: false };
    }
    const incoming = this.incoming;
    if (!incoming || !sameMeta(incoming.meta, chunk.meta) || incoming.bytes !== chunk.offset) {
      throw new Error(
        `snapshot chunk (index ${chunk.meta.index}, offset ${chunk.offset}) does not continue the pending one ` +
          (incoming ? `(index ${incoming.meta.index}, ${incoming.bytes} bytes)` : "(none)"),
      );
    }
    incoming.parts.push(chunk.data.slice());
    incoming.bytes += chunk.data.length;
    incoming.done = chunk.done;
  }

  /** Installs the fully received snapshot `meta`; returns its payload. */
  installSnapshot(meta: SnapshotMeta): Uint8Array {
    const incoming = this.incoming;
    if (!incoming || !sameMeta(incoming.meta, meta)) {
      throw new Error(`install of snapshot (index ${meta.index}, term ${meta.term}) without its chunks on disk`);
    }
    if (!incoming.done || incoming.bytes !== meta.sizeBytes) {
      throw new Error(`install of snapshot ${meta.index}: ${incoming.bytes} of ${meta.sizeBytes} bytes received, done=${incoming.done}`);
    }
    const data = new Uint8Array(incoming.bytes);
    let offset = 0;
    for (const part of incoming.parts) {
      data.set(part, offset);
      offset += part.length;
    }
    this.incoming = undefined;
    this.storage.applySnapshot(meta, data);
    this.snapshotsInstalled += 1;
    return data;
  }

  appendEntries(entries: Entry[]): void {
    this.storage.append(entries);
  }

  setHardState(hard: HardState): void {
    this.storage.setHardState(hard);
  }

  /** The application's own snapshot: store it, then compact the log up to `compactIndex`. */
  takeSnapshot(meta: SnapshotMeta, data: Uint8Array, compactIndex: number): void {
    this.storage.createSnapshot(meta, data);
    this.storage.compact(compactIndex);
    this.snapshotsTaken += 1;
  }

  /** The newest durable snapshot's payload (empty when there is none). */
  readSnapshotData(): Uint8Array {
    const meta = this.storage.snapshotMeta();
    if (meta.index === 0) return new Uint8Array(0);
    const out = new Uint8Array(meta.sizeBytes);
    let offset = 0;
    while (offset < meta.sizeBytes) {
      const part = this.storage.readSnapshotChunk(offset, 1 << 20);
      if (part.length === 0) throw new Error(`snapshot payload ends at ${offset} of ${meta.sizeBytes}`);
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}
