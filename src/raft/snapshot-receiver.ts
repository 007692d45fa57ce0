/**
 * A follower's side of a chunked InstallSnapshot (section 7, Figure 13): chunks must
 * arrive in order; each accepted chunk is handed to the host (Ready.snapshotChunks)
 * to be written durably, and acknowledged only after that (the acknowledgement goes
 * through the persistence gate).
 *
 * Rules:
 *   - a chunk at offset 0 starts a new transfer (discarding a partial one), unless it
 *     repeats the first chunk of the transfer in progress;
 *   - the chunk at the expected offset of the same snapshot is accepted;
 *   - an already received chunk is acknowledged again (idempotent);
 *   - anything else is rejected with the offset expected (0 when no transfer matches),
 *     so the leader resumes from there.
 * A transfer belongs to one sender in one term: two leaders' snapshots of the same
 * index need not be byte-identical, so their chunks are never mixed.
 */
import type { SnapshotChunk, SnapshotMeta } from "../proto/schema.js";

/** Chunks accepted but not yet handed out; the leader sends one at a time, so this stays tiny. */
export const CHUNKS_TO_PERSIST_MAX = 1024;

export type ChunkOutcome =
  | { kind: "accepted"; nextOffset: number; done: boolean }
  | { kind: "duplicate"; nextOffset: number }
  | { kind: "rejected"; expectedOffset: number };

export function sameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term && a.sizeBytes === b.sizeBytes;
}

export class SnapshotReceiver {
  private incoming: { meta: SnapshotMeta; offset: number; from: number; term: number } | undefined = undefined;
  private chunksToPersist: SnapshotChunk[] = [];

  receive(chunk: SnapshotChunk, from: number, term: number): ChunkOutcome {
    const incoming = this.incoming;
    const same = incoming !== undefined && incoming.from === from && incoming.term === term && sameSnapshot(incoming.meta, chunk.meta);
    if (same && chunk.offset < incoming.offset) return { kind: "duplicate", nextOffset: incoming.offset };
    if (!same) {
      if (chunk.offset !== 0) return { kind: "rejected", expectedOffset: 0 };
      this.incoming = { meta: chunk.meta, offset: 0, from, term };
    } else if (chunk.offset !== incoming.offset) {
      return { kind: "rejected", expectedOffset: incoming.offset };
    }
    const current = this.incoming!;
    const end = chunk.offset + chunk.data.length;
    const done = chunk.done || end >= chunk.meta.sizeBytes;
    if (end > chunk.meta.sizeBytes || (done && end !== chunk.meta.sizeBytes) || this.chunksToPersist.length >= CHUNKS_TO_PERSIST_MAX) {
      this.incoming = undefined;
      return { kind: "rejected", expectedOffset: 0 };
    }
    this.chunksToPersist.push({ meta: chunk.meta, offset: chunk.offset, data: chunk.data, done });
    current.offset = end;
    if (done) this.incoming = undefined;
    return { kind: "accepted", nextOffset: end, done };
  }

  hasChunksToPersist(): boolean {
    return this.chunksToPersist.length > 0;
  }

  takeChunksToPersist(): SnapshotChunk[] {
    if (this.chunksToPersist.length === 0) return [];
    const chunks = this.chunksToPersist;
    this.chunksToPersist = [];
    return chunks;
  }

  /** Forgets a partial transfer (its chunks already handed out stay with the host). */
  reset(): void {
    this.incoming = undefined;
  }
}
