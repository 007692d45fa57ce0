/**
 * The snapshot store: a directory of snapshot files (format in storage/snapshot/format.ts),
 * the newest few kept.
 *
 * - Application snapshots are written streamed through `createWriter(target)`:
 *   `write(chunk)` any number of times, then `finish()`, which makes the file durable
 *   atomically (temporary file, fsync, rename, fsync directory; storage/snapshot/writer.ts)
 *   and only then prunes older snapshots beyond the newest `retainCount`.
 * - Snapshots received from a leader arrive as chunks at given offsets
 *   (`writeIncomingChunk`: written and fsynced before it resolves) and become a snapshot
 *   with `installIncoming(meta)`, atomically in the same way. A partial incoming snapshot
 *   does not survive a restart: it is a temporary file (its name is never made durable)
 *   removed at open; the Raft core keeps no transfer state across restarts, so the
 *   leader's next chunk finds no pending transfer, is rejected, and the transfer starts
 *   again at offset 0.
 * - The newest *valid* snapshot is the current one: `newestMeta()`, `readChunk()`
 *   (synchronous, for the Raft core's InstallSnapshot sender) and `openReader()` serve it.
 *   At open every snapshot file is checked newest first, payload checksum included, until a
 *   valid one is found; corrupt ones are skipped and listed in `recovery.skippedCorrupt`
 *   (never silently), and left on disk for inspection.
 *
 * Operations must not overlap (await each); the composite storage serializes them.
 */
import { join } from "node:path";
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "./errors.js";
import { copyClusterConfig, type SnapshotChunk, type SnapshotMeta } from "../src/proto/schema.js";
import type { FileSystem, StorageFile } from "./fs/file-system.js";
import {
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_TEMPORARY_SUFFIX,
  parseSnapshotFileName,
  snapshotFileName,
} from "./snapshot/format.js";
import { inspectSnapshotFile, readSnapshotHeaderAndMeta, streamPayload, type SnapshotFileInfo } from "./snapshot/reader.js";
import { SnapshotFileWriter, SnapshotWriteError, assertSnapshotTarget, type SnapshotTarget } from "./snapshot/writer.js";

export type { SnapshotTarget } from "./snapshot/writer.js";

/** Snapshots kept by default: the newest plus two fallbacks should the newest turn out corrupt. */
export const SNAPSHOT_RETAIN_COUNT_DEFAULT = 3;
/** Most bytes one readChunk call returns, whatever the caller asks: bounds the buffer allocated per call. */
export const SNAPSHOT_READ_CHUNK_BYTES_MAX = 64 * 1024 * 1024;

export interface SnapshotStoreOptions {
  fs: FileSystem;
  /** How many snapshot files to keep (>= 1). Default SNAPSHOT_RETAIN_COUNT_DEFAULT. */
  retainCount?: number;
}

export interface SnapshotStoreRecovery {
  /** The snapshot now served, if any. */
  newest?: { name: string; meta: SnapshotMeta };
  /** Snapshot files newer than `newest` that failed verification, newest first. */
  skippedCorrupt: Array<{ name: string; problem: string }>;
  /** Unfinished writes (temporary files) found and removed. */
  removedTemporaryFiles: string[];
  /** Names in the directory that are neither snapshots nor temporary files (left alone). */
  ignoredFiles: string[];
}

export interface SnapshotListing {
  name: string;
  index: number;
  term: number;
  /** "unverified": header and metadata are good, the payload was not read. */
  status: "valid" | "unverified" | "corrupt";
  meta?: SnapshotMeta;
  fileBytes?: number;
  problem?: string;
}

function compareNewestFirst(a: { index: number; term: number }, b: { index: number; term: number }): number {
  return b.index - a.index || b.term - a.term;
}

function snapshotNamesNewestFirst(names: string[]): Array<{ name: string; index: number; term: number }> {
  const parsed: Array<{ name: string; index: number; term: number }> = [];
  for (const name of names) {
    const position = parseSnapshotFileName(name);
    if (position) parsed.push({ name, ...position });
  }
  return parsed.sort(compareNewestFirst);
}

/** Lists the snapshot files of `directory`, newest first, checking each (for tools; changes nothing). */
export async function listSnapshotFiles(fs: FileSystem, directory: string, options: { verifyPayload: boolean }): Promise<SnapshotListing[]> {
  const listings: SnapshotListing[] = [];
  for (const { name, index, term } of snapshotNamesNewestFirst(await fs.list(directory))) {
    try {
      const info = await inspectSnapshotFile(fs, join(directory, name), options);
      listings.push({ name, index, term, status: options.verifyPayload ? "valid" : "unverified", meta: info.meta, fileBytes: info.fileBytes });
    } catch (error) {
      listings.push({ name, index, term, status: "corrupt", problem: (error as Error).message });
    }
  }
  return listings;
}

interface CurrentSnapshot {
  name: string;
  path: string;
  info: SnapshotFileInfo;
  file: StorageFile;
}

/** A streamed writer of one application snapshot. */
export class SnapshotWriter {
  constructor(
    private readonly writer: SnapshotFileWriter,
    private readonly adopt: (committed: { name: string; path: string }) => Promise<SnapshotMeta>,
    private readonly onFailure: (error: unknown) => void,
  ) {}

  get bytesWritten(): number {
    return this.writer.bytesWritten;
  }

  /** Appends payload bytes (buffered; durable only after finish()). */
  write(chunk: Uint8Array): Promise<void> {
    return this.writer.write(chunk);
  }

  /** Makes the payload durable in the temporary file (the slow part); finish() then only renames and adopts it. */
  async seal(): Promise<void> {
    try {
      await this.writer.seal();
    } catch (error) {
      this.onFailure(error);
      throw error;
    }
  }

  /** Makes the snapshot durable and current; resolves with its metadata once it survives a crash. */
  async finish(): Promise<SnapshotMeta> {
    let committed: { name: string; path: string };
    try {
      committed = await this.writer.commit();
    } catch (error) {
      this.onFailure(error);
      throw error;
    }
    return this.adopt(committed);
  }

  /** Drops the unfinished snapshot. */
  abort(): Promise<void> {
    return this.writer.abort();
  }
}

export class SnapshotStore {
  private current: CurrentSnapshot | undefined;
  private incoming: SnapshotFileWriter | undefined;
  private failure: RaftwalError | undefined;
  private closed = false;
  private readonly retainCount: number;

  private constructor(
    private readonly fs: FileSystem,
    readonly directory: string,
    retainCount: number,
    readonly recovery: SnapshotStoreRecovery,
  ) {
    this.retainCount = retainCount;
  }

  /** Creates `directory` if needed, removes unfinished writes and selects the newest valid snapshot. */
  static async open(directory: string, options: SnapshotStoreOptions): Promise<SnapshotStore> {
    const retainCount = options.retainCount ?? SNAPSHOT_RETAIN_COUNT_DEFAULT;
    if (!Number.isSafeInteger(retainCount) || retainCount < 1) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot retainCount must be an integer >= 1, got ${retainCount}`);
    }
    const fs = options.fs;
    await fs.ensureDirectory(directory);
    const names = await fs.list(directory);
    const recovery: SnapshotStoreRecovery = { skippedCorrupt: [], removedTemporaryFiles: [], ignoredFiles: [] };
    for (const name of names) {
      if (name.endsWith(SNAPSHOT_TEMPORARY_SUFFIX)) {
        await fs.remove(join(directory, name));
        recovery.removedTemporaryFiles.push(name);
      } else if (!parseSnapshotFileName(name)) {
        recovery.ignoredFiles.push(name);
      }
    }
    if (recovery.removedTemporaryFiles.length > 0) await fs.syncDirectory(directory);
    const store = new SnapshotStore(fs, directory, retainCount, recovery);
    for (const { name } of snapshotNamesNewestFirst(names)) {
      const path = join(directory, name);
      try {
        await inspectSnapshotFile(fs, path, { verifyPayload: true });
        store.current = await store.openCurrent(name);
        recovery.newest = { name, meta: store.current.info.meta };
        break;
      } catch (error) {
        if ((error as RaftwalError).code !== WalErrorCode.SNAPSHOT_CORRUPT) throw error;
        recovery.skippedCorrupt.push({ name, problem: (error as Error).message });
      }
    }
    return store;
  }

  private async openCurrent(name: string): Promise<CurrentSnapshot> {
    const path = join(this.directory, name);
    const file = await this.fs.open(path, { readOnly: true });
    try {
      return { name, path, file, info: await readSnapshotHeaderAndMeta(file, path) };
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  private assertWritable(): void {
    if (this.closed) throw new RaftwalError(WalErrorCode.CLOSED, `snapshot store ${this.directory} is closed`);
    if (this.failure) throw this.failure;
  }

  private noteFailure = (error: unknown): void => {
    if (error instanceof SnapshotWriteError && error.directoryStateUnknown) this.failure ??= error;
  };

  /** The failure that made this store refuse writes, if any. */
  failed(): RaftwalError | undefined {
    return this.failure;
  }

  /** Metadata of the newest valid snapshot, or undefined when there is none. */
  newestMeta(): SnapshotMeta | undefined {
    const meta = this.current?.info.meta;
    return meta ? { ...meta, config: copyClusterConfig(meta.config) } : undefined;
  }

  /**
   * Metadata of the current snapshot (the one readChunk reads), undefined when there is
   * none: the store's own object, not a copy (read it, never change it).
   */
  currentMeta(): Readonly<SnapshotMeta> | undefined {
    return this.current?.info.meta;
  }

  /** File name of the newest valid snapshot. */
  newestName(): string | undefined {
    return this.current?.name;
  }

  /** Every snapshot file, newest first (headers and metadata checked; payload too with verifyPayload). */
  list(options: { verifyPayload: boolean } = { verifyPayload: false }): Promise<SnapshotListing[]> {
    return listSnapshotFiles(this.fs, this.directory, options);
  }

  /** Starts a streamed application snapshot covering entries up to (target.index, target.term). */
  async createWriter(target: SnapshotTarget): Promise<SnapshotWriter> {
    this.assertWritable();
    assertSnapshotTarget(target);
    const temporaryName = `${snapshotFileName(target.index, target.term)}${SNAPSHOT_TEMPORARY_SUFFIX}`;
    const writer = await SnapshotFileWriter.create(this.fs, this.directory, target, temporaryName);
    return new SnapshotWriter(writer, (committed) => this.adopt(committed), this.noteFailure);
  }

  /** Progress of the incoming snapshot transfer, if one is pending. */
  incomingProgress(): { index: number; term: number; bytes: number } | undefined {
    const incoming = this.incoming;
    return incoming ? { index: incoming.target.index, term: incoming.target.term, bytes: incoming.bytesWritten } : undefined;
  }

  /**
   * Writes one chunk of a snapshot received from a leader; durable when it resolves.
   * Chunks must be contiguous: a chunk for a different (index, term) than the pending
   * transfer starts a new transfer (it must be at offset 0); bytes already written (a
   * retransmission) are skipped; a gap is an error.
   */
  async writeIncomingChunk(chunk: SnapshotChunk): Promise<void> {
    this.assertWritable();
    const { meta, offset, data } = chunk;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot chunk offset ${offset} is invalid`);
    let incoming = this.incoming;
    if (incoming && (incoming.target.index !== meta.index || incoming.target.term !== meta.term)) {
      await this.abortIncoming();
      incoming = undefined;
    }
    if (!incoming) {
      if (offset !== 0) {
        throw new RaftwalError(
          RaftwalErrorCode.INVALID_ARGUMENT,
          `snapshot chunk at offset ${offset} for (index ${meta.index}, term ${meta.term}) but no transfer of it is pending: the first chunk must be at offset 0`,
        );
      }
      const target = { index: meta.index, term: meta.term, config: meta.config };
      const temporaryName = `incoming-${snapshotFileName(meta.index, meta.term)}${SNAPSHOT_TEMPORARY_SUFFIX}`;
      incoming = await SnapshotFileWriter.create(this.fs, this.directory, target, temporaryName);
      this.incoming = incoming;
    }
    const written = incoming.bytesWritten;
    if (offset > written) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot chunk at offset ${offset} leaves a gap: ${written} bytes received so far`);
    }
    const fresh = data.subarray(Math.min(data.length, written - offset));
    if (fresh.length === 0) return;
    try {
      await incoming.write(fresh);
      await incoming.sync();
    } catch (error) {
      this.incoming = undefined;
      throw error;
    }
  }

  /** Drops a pending incoming transfer. */
  async abortIncoming(): Promise<void> {
    const incoming = this.incoming;
    this.incoming = undefined;
    await incoming?.abort();
  }

  /**
   * Makes the fully received incoming snapshot durable and current. `meta` must name the
   * pending transfer and its size must match the bytes received. A zero-byte snapshot may
   * be installed without any chunk.
   */
  async installIncoming(meta: SnapshotMeta): Promise<SnapshotMeta> {
    this.assertWritable();
    let incoming = this.incoming;
    if (!incoming && meta.sizeBytes === 0) {
      const temporaryName = `incoming-${snapshotFileName(meta.index, meta.term)}${SNAPSHOT_TEMPORARY_SUFFIX}`;
      incoming = await SnapshotFileWriter.create(this.fs, this.directory, meta, temporaryName);
    }
    if (!incoming || incoming.target.index !== meta.index || incoming.target.term !== meta.term) {
      const pending = this.incomingProgress();
      throw new RaftwalError(
        RaftwalErrorCode.INVALID_ARGUMENT,
        `cannot install snapshot (index ${meta.index}, term ${meta.term}): ` +
          (pending ? `the pending transfer is (index ${pending.index}, term ${pending.term})` : "no transfer is pending"),
      );
    }
    if (incoming.bytesWritten !== meta.sizeBytes) {
      throw new RaftwalError(
        RaftwalErrorCode.INVALID_ARGUMENT,
        `cannot install snapshot (index ${meta.index}, term ${meta.term}): ${incoming.bytesWritten} of ${meta.sizeBytes} bytes received`,
      );
    }
    incoming.target.config = copyClusterConfig(meta.config);
    this.incoming = undefined;
    let committed: { name: string; path: string };
    try {
      committed = await incoming.commit();
    } catch (error) {
      this.noteFailure(error);
      throw error;
    }
    return this.adopt(committed);
  }

  /**
   * A just-committed snapshot becomes current if it is the newest; then older ones are
   * pruned. Its metadata and its open file become current in one assignment (before any
   * await), so `currentMeta()` always names the file `readChunk` reads.
   */
  private async adopt(committed: { name: string; path: string }): Promise<SnapshotMeta> {
    const candidate = await this.openCurrent(committed.name);
    const previous = this.current;
    if (!previous || compareNewestFirst(candidate.info.meta, previous.info.meta) <= 0) {
      // <= 0: the new one is newer or the same name (it replaced the file we had open).
      this.current = candidate;
      if (previous) await previous.file.close();
    } else {
      await candidate.file.close();
    }
    try {
      await this.prune();
    } catch (error) {
      this.failure ??= new RaftwalError(
        WalErrorCode.FAILED,
        `pruning old snapshots in ${this.directory} failed (${(error as Error).message}); the snapshot store refuses further writes`,
        { cause: error },
      );
      throw this.failure;
    }
    return candidate.info.meta;
  }

  /** Removes snapshot files beyond the newest `retainCount`, never the current one, then syncs the directory. */
  private async prune(): Promise<void> {
    const snapshots = snapshotNamesNewestFirst(await this.fs.list(this.directory));
    const doomed = snapshots.slice(this.retainCount).filter(({ name }) => name !== this.current?.name);
    for (const { name } of doomed) await this.fs.remove(join(this.directory, name));
    if (doomed.length > 0) await this.fs.syncDirectory(this.directory);
  }

  /**
   * Up to `bytesMax` of the current snapshot's payload from `offset`, read synchronously
   * (RaftLogStorage.readSnapshotChunk). Always serves the snapshot `currentMeta()` names at
   * the same moment: a caller streaming one to a follower checks the meta has not changed
   * since its previous chunk, in the same turn as the read. An offset at the end returns an
   * empty array.
   */
  readChunk(offset: number, bytesMax: number): Uint8Array {
    const current = this.current;
    if (this.closed) throw new RaftwalError(WalErrorCode.CLOSED, `snapshot store ${this.directory} is closed`);
    if (!current) throw new RaftwalError(WalErrorCode.UNAVAILABLE, `no snapshot in ${this.directory}`);
    const size = current.info.header.payloadBytes;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot chunk offset ${offset} outside [0, ${size}]`);
    }
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 1) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `bytesMax must be >= 1, got ${bytesMax}`);
    const length = Math.min(bytesMax, size - offset, SNAPSHOT_READ_CHUNK_BYTES_MAX);
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const count = current.file.readSync(buffer, done, length - done, SNAPSHOT_HEADER_BYTES + offset + done);
      if (count === 0) throw new RaftwalError(WalErrorCode.SNAPSHOT_CORRUPT, `snapshot ${current.path} ended early at payload byte ${offset + done}`);
      done += count;
    }
    return buffer;
  }

  /**
   * Streams the current snapshot's payload (independently of readChunk). The payload
   * checksum is checked at the end: if it fails, the iteration throws
   * WAL_ERR_SNAPSHOT_CORRUPT after the last chunk, so a consumer restoring state must
   * only commit what it built once the iteration completes.
   */
  async *openReader(chunkBytes?: number): AsyncGenerator<Uint8Array> {
    const current = this.current;
    if (!current) throw new RaftwalError(WalErrorCode.UNAVAILABLE, `no snapshot in ${this.directory}`);
    const file = await this.fs.open(current.path, { readOnly: true });
    try {
      const info = await readSnapshotHeaderAndMeta(file, current.path);
      yield* streamPayload(file, info, current.path, chunkBytes);
    } finally {
      await file.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.incoming?.abort().catch(() => undefined);
    this.incoming = undefined;
    await this.current?.file.close();
  }
}
