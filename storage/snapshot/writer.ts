/**
 * Writing one snapshot file: payload streamed into a temporary file, then made durable
 * under its final name.
 *
 * Durability procedure of `commit()` (each step completes before the next starts):
 *   1. flush the buffered payload; write the metadata after it and the header at 0;
 *   2. fsync the temporary file;
 *   3. rename it to `snapshot-<index>-<term>.snap`;
 *   4. fsync the directory. Only now is the snapshot durable and commit() resolved.
 * A crash before step 4 completes leaves no visible snapshot (or the previous file of
 * the same name): temporary files are removed at open.
 *
 * Failures: a failed write or fsync before the rename aborts this writer only (the
 * temporary file is never renamed, so it can never be read as a snapshot); the error
 * is thrown. A failure at or after the rename leaves the directory in an unknown state;
 * the error says so and the store owning the writer refuses further writes.
 */
import { join } from "node:path";
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "../errors.js";
import { copyClusterConfig, type ClusterConfig, type SnapshotMeta } from "../../src/proto/schema.js";
import { crc32 } from "../wal/crc.js";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import {
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_PAYLOAD_BYTES_MAX,
  encodeSnapshotHeader,
  encodeSnapshotMeta,
  snapshotFileName,
} from "./format.js";

/** Small chunks are gathered up to this many bytes per file write, to bound the number of write calls. */
export const SNAPSHOT_WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * The payload is synced each time this many more bytes were written, so that sealing a
 * large snapshot never flushes it all at once: a flush of tens of megabytes queues the
 * WAL's small durable writes behind it on the same disk (RocksDB's `bytes_per_sync` does
 * the same for its files). These syncs only pace the writeback; the snapshot is durable
 * after seal()'s own sync, as before.
 */
export const SNAPSHOT_SYNC_EVERY_BYTES = 4 * 1024 * 1024;

/** What a snapshot covers; the payload size is measured by the writer. */
export interface SnapshotTarget {
  index: number;
  term: number;
  /** Stored as it is (the storage engine does not interpret it). */
  config: ClusterConfig;
}

export class SnapshotWriteError extends RaftwalError {
  constructor(
    message: string,
    /** True when the failure happened at or after the rename: the directory state is unknown. */
    readonly directoryStateUnknown: boolean,
    cause: unknown,
  ) {
    super(WalErrorCode.FAILED, message, { cause });
  }
}

export function assertSnapshotTarget(target: SnapshotTarget): void {
  for (const key of ["index", "term"] as const) {
    if (!Number.isSafeInteger(target[key]) || target[key] < 0) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot ${key} must be a non-negative safe integer, got ${target[key]}`);
    }
  }
}

export class SnapshotFileWriter {
  private payloadBytes = 0;
  private flushedBytes = 0;
  /** Payload bytes the last pacing sync covered (SNAPSHOT_SYNC_EVERY_BYTES). */
  private syncedBytes = 0;
  private checksum = 0;
  private buffer = new Uint8Array(SNAPSHOT_WRITE_BUFFER_BYTES);
  private bufferedBytes = 0;
  private state: "open" | "sealed" | "committed" | "aborted" | "failed" = "open";
  /** The metadata written by seal(). */
  private sealedMeta: SnapshotMeta | undefined;

  private constructor(
    private readonly fs: FileSystem,
    readonly directory: string,
    readonly target: SnapshotTarget,
    readonly temporaryPath: string,
    private readonly file: StorageFile,
  ) {}

  /** Creates (replacing any leftover) the temporary file `temporaryName` in `directory`. */
  static async create(fs: FileSystem, directory: string, target: SnapshotTarget, temporaryName: string): Promise<SnapshotFileWriter> {
    assertSnapshotTarget(target);
    const temporaryPath = join(directory, temporaryName);
    await fs.remove(temporaryPath);
    const file = await fs.open(temporaryPath, { create: true, exclusive: true });
    return new SnapshotFileWriter(fs, directory, { index: target.index, term: target.term, config: copyClusterConfig(target.config) }, temporaryPath, file);
  }

  /** Payload bytes accepted so far. */
  get bytesWritten(): number {
    return this.payloadBytes;
  }

  get finalName(): string {
    return snapshotFileName(this.target.index, this.target.term);
  }

  private assertOpen(): void {
    if (this.state !== "open") throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot writer for ${this.finalName} is ${this.state}`);
  }

  private async guard<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      this.state = "failed";
      await this.file.close().catch(() => undefined);
      await this.fs.remove(this.temporaryPath).catch(() => undefined);
      throw new SnapshotWriteError(`snapshot ${this.finalName}: ${what} failed (${(error as Error).message})`, false, error);
    }
  }

  /** Appends payload bytes. Not durable until commit(). */
  async write(chunk: Uint8Array): Promise<void> {
    this.assertOpen();
    if (this.payloadBytes + chunk.length > SNAPSHOT_PAYLOAD_BYTES_MAX) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot payload over ${SNAPSHOT_PAYLOAD_BYTES_MAX} bytes`);
    }
    this.checksum = crc32(chunk, this.checksum);
    this.payloadBytes += chunk.length;
    if (this.bufferedBytes + chunk.length <= this.buffer.length) {
      this.buffer.set(chunk, this.bufferedBytes);
      this.bufferedBytes += chunk.length;
      return;
    }
    await this.flush();
    if (chunk.length >= this.buffer.length) {
      await this.guard("write", () => this.file.write(chunk, SNAPSHOT_HEADER_BYTES + this.flushedBytes));
      this.flushedBytes += chunk.length;
    } else {
      this.buffer.set(chunk, 0);
      this.bufferedBytes = chunk.length;
    }
    if (this.flushedBytes - this.syncedBytes >= SNAPSHOT_SYNC_EVERY_BYTES) {
      await this.guard("fsync", () => this.file.sync());
      this.syncedBytes = this.flushedBytes;
    }
  }

  private async flush(): Promise<void> {
    if (this.bufferedBytes === 0) return;
    const data = this.buffer.subarray(0, this.bufferedBytes);
    await this.guard("write", () => this.file.write(data, SNAPSHOT_HEADER_BYTES + this.flushedBytes));
    this.flushedBytes += this.bufferedBytes;
    // The file system may keep a reference to the written bytes (the in-memory one
    // copies, a real one is done with them once write resolves); a fresh buffer is safe for both.
    this.buffer = new Uint8Array(SNAPSHOT_WRITE_BUFFER_BYTES);
    this.bufferedBytes = 0;
  }

  /** Makes the payload written so far durable in the temporary file (for incoming chunks acknowledged to a leader). */
  async sync(): Promise<void> {
    this.assertOpen();
    await this.flush();
    await this.guard("fsync", () => this.file.sync());
    this.syncedBytes = this.flushedBytes;
  }

  /** Makes the snapshot durable under its final name (procedure at the top of this file). */
  /**
   * Makes the temporary file complete and durable (payload, metadata, header; fsync), but
   * not yet visible under its final name: the slow part of a snapshot, done before the
   * caller takes its turn to make it current (commit()).
   */
  async seal(): Promise<void> {
    this.assertOpen();
    await this.flush();
    const meta: SnapshotMeta = { ...this.target, config: copyClusterConfig(this.target.config), sizeBytes: this.payloadBytes };
    const metaBytes = encodeSnapshotMeta(meta);
    const header = encodeSnapshotHeader({
      payloadBytes: this.payloadBytes,
      metaBytes: metaBytes.length,
      payloadChecksum: this.checksum,
      metaChecksum: crc32(metaBytes),
    });
    await this.guard("write", async () => {
      await this.file.write(metaBytes, SNAPSHOT_HEADER_BYTES + this.payloadBytes);
      await this.file.write(header, 0);
    });
    await this.guard("fsync", () => this.file.sync());
    await this.guard("close", () => this.file.close());
    this.state = "sealed";
    this.sealedMeta = meta;
  }

  /** Gives the sealed file its final name durably (sealing it first if needed). */
  async commit(): Promise<{ meta: SnapshotMeta; name: string; path: string }> {
    if (this.state === "open") await this.seal();
    if (this.state !== "sealed") throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot writer for ${this.finalName} is ${this.state}`);
    const meta = this.sealedMeta!;
    const path = join(this.directory, this.finalName);
    try {
      await this.fs.rename(this.temporaryPath, path);
      await this.fs.syncDirectory(this.directory);
    } catch (error) {
      this.state = "failed";
      throw new SnapshotWriteError(
        `snapshot ${this.finalName}: making the new name durable failed (${(error as Error).message}); whether it survives a crash is unknown`,
        true,
        error,
      );
    }
    this.state = "committed";
    return { meta, name: this.finalName, path };
  }

  /** Drops the temporary file. Safe to call in any state. */
  async abort(): Promise<void> {
    if (this.state !== "open" && this.state !== "sealed") return;
    const wasOpen = this.state === "open";
    this.state = "aborted";
    if (wasOpen) await this.file.close().catch(() => undefined);
    await this.fs.remove(this.temporaryPath);
  }
}
