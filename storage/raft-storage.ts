/**
 * The composite storage of one Raft node: hard state + snapshot store + WAL, in
 * subdirectories of one data directory, serving the Raft core's log reads and the
 * host's writes that follow each Ready (src/raft/types.ts, step 4). It imports nothing
 * from the core: it works on the schema's records (src/proto) and fits the core's
 * `RaftLogStorage` interface structurally (test/storage/raft-storage.test.ts checks
 * the fit at compile time). Out-of-range reads throw WAL_ERR_COMPACTED or
 * WAL_ERR_UNAVAILABLE.
 *
 * Directory layout:
 *
 *   <dir>/LOCK                  the directory lock's file   (storage/fs/directory-lock.ts)
 *   <dir>/hardstate/hardstate   term, vote, commit          (storage/hard-state.ts)
 *   <dir>/snap/snapshot-<index>-<term>.snap                 (storage/snapshot-store.ts)
 *   <dir>/wal/segment-<id>.wal                              (storage/wal/)
 *
 * Durability order (every writer resolves only once its effect survives a crash):
 *   1. `writeSnapshotChunk`: chunk written and fsynced into the pending incoming file.
 *   2. `installSnapshot(meta)`: the snapshot file is made durable (fsync, rename, fsync
 *      directory) BEFORE the WAL records the compaction to (meta.index, meta.term).
 *      "Save snapshot file, discard any existing or partial snapshot with a smaller
 *      index. If existing log entry has same index and term as snapshot's last included
 *      entry, retain log entries following it and reply. Discard the entire log"
 *      (Raft paper, section 7, InstallSnapshot receiver steps 5-7). A crash between the
 *      two is repaired at open: the newest snapshot is ahead of the WAL's compaction, so
 *      open records the compaction again.
 *   3. `append(entries)`: a conflicting suffix is truncated first (section 5.3), never
 *      below the durable commit index; the entries are durable when it resolves.
 *   4. `saveHardState(state)`: refused if its commit is ahead of the log's last index, so
 *      the durable commit index never covers an entry the log does not durably hold.
 *      The term never decreases and a vote, once cast in a term, never changes.
 *   5. `createSnapshot(target, data)` (application side): the payload is written and
 *      fsynced into a temporary file outside the writers' queue (appends go on meanwhile);
 *      then, in its turn, the file gets its final name durably; only then is the WAL
 *      compacted up to `target.compactTo` (default: the snapshot's index) with
 *      `wal.compact(i, term)`, which deletes whole segments whose entries are all <= i and
 *      fsyncs the directory. Entries between the compaction point and the snapshot stay
 *      readable: a catch-up tail, so that a leader can still send them to a follower that
 *      is only a little behind instead of its whole snapshot (etcd's
 *      SnapshotCatchUpEntries). A crash in between leaves the snapshot and the full log:
 *      still consistent (a longer tail), and the next snapshot compacts it.
 *
 * Open (recovery), step by step:
 *   0. Lock the directory (storage/fs/directory-lock.ts): one process at a time, or
 *      WAL_ERR_LOCKED before anything is read. The lock is held until close().
 *   1. Read the hard state (missing: all zeros; damaged: WAL_ERR_HARD_STATE_CORRUPT).
 *   2. Open the snapshot store: the newest snapshot whose checksums verify is current;
 *      newer corrupt ones are skipped and reported in `recovery.warnings`.
 *   3. Open the WAL (torn tail cut, corruption is an error).
 *   4. Reconcile: if the snapshot is ahead of the WAL's compaction and the WAL does not
 *      hold the snapshot's index with its term, discard the log it replaces (step 2 above
 *      was interrupted); if it does hold it, the entries behind the snapshot are a catch-up
 *      tail and stay (step 5). If the WAL is compacted beyond the snapshot
 *      (the newer snapshot that covered it is corrupt or missing), the entries between
 *      are gone: WAL_ERR_SNAPSHOT_CORRUPT. A commit index ahead of the log is WAL_ERR_CORRUPT.
 *   5. A hard state saved behind its Ready's entries or snapshot (a crash in between) is
 *      raised in memory: term to the last entry's term (no vote), commit to the snapshot's
 *      index (raiseHardStateFloors); `recovery.actions` says so.
 *
 * Writers are serialized (each waits for the previous one); reads are synchronous and
 * see everything acknowledged so far. A failed write or fsync in any part makes the
 * whole storage refuse further writes (`failed()`); reopen to recover.
 */
import { join } from "node:path";
import { copyClusterConfig, emptyClusterConfig, type ClusterConfig, type Entry, type HardState, type SnapshotChunk, type SnapshotMeta } from "../src/proto/schema.js";
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "./errors.js";
import type { DirectoryLock, FileSystem } from "./fs/file-system.js";
import { NodeFileSystem } from "./fs/node-file-system.js";
import { HardStateFile } from "./hard-state.js";
import { damaged, openHardState, openWal, settleWalBehindSnapshot, type RepairContext } from "./repair-open.js";
import { clearRepairMarker, readRepairMarker, writeRepairMarker, type RepairMarker } from "./repair-marker.js";
import type { StorageDamageReport } from "./salvage.js";
import { SnapshotStore, type SnapshotStoreRecovery } from "./snapshot-store.js";
import { Wal, type WalOptions } from "./wal/index.js";

export const WAL_DIRECTORY_NAME = "wal";
export const SNAPSHOT_DIRECTORY_NAME = "snap";
export const HARD_STATE_DIRECTORY_NAME = "hardstate";

export interface RaftStorageOptions {
  /** Default: the real disk. */
  fs?: FileSystem;
  /** Passed to Wal.open (segment size, group-commit bounds...). `fs` is set from above. */
  wal?: Omit<Partial<WalOptions>, "fs">;
  /** Snapshot files kept (>= 1). Default 3. */
  snapshotRetainCount?: number;
  /**
   * What open does with damaged durable state: "stop" (default) fails with the damage's
   * code; "repair" sets the damage aside, opens what is intact, and reports exactly what
   * was lost (`damage()`, `recovery.damage`), for a node that repairs itself from its peers.
   */
  onCorruption?: "stop" | "repair";
}

/** What a repair-mode open lost, in the terms the Raft core takes (RaftConfig.damage). */
export interface StorageDamageSummary {
  /** The first log index lost (the log now ends before it); 0 when the log is whole. */
  lostFromIndex: number;
  /** The highest index the log may have held (this node may have acknowledged up to it). */
  lostToIndex: number;
  /** Term and vote are unknown. */
  hardStateLost: boolean;
}

export interface RaftStorageRecovery {
  hardState: { state: HardState; fileExisted: boolean };
  snapshot: SnapshotStoreRecovery;
  /** The WAL's own recovery report. */
  wal: Wal["recovery"];
  /** What open did to reconcile the parts (e.g. an interrupted compaction completed). */
  actions: string[];
  /** Things an operator should know (e.g. a corrupt newest snapshot was skipped). */
  warnings: string[];
  /** Damage found and set aside by this repair-mode open (undefined when none, or in "stop" mode). */
  damage?: StorageDamageReport;
  /** The directory is under repair (this open's damage, or an earlier one not yet repaired): repair-marker.ts. */
  repairMarker?: RepairMarker;
}

const NO_SNAPSHOT: SnapshotMeta = Object.freeze({ index: 0, term: 0, sizeBytes: 0, config: emptyClusterConfig() }) as SnapshotMeta;

/** What the application's createSnapshot covers. `term` is checked against the log when given. */
export interface SnapshotTargetInput {
  index: number;
  term?: number;
  /** The cluster configuration at `index`, stored in the snapshot's metadata. */
  config: ClusterConfig;
  /**
   * Compact the log only up to here once the snapshot is durable (default `index`): the
   * entries after it stay as a catch-up tail behind the snapshot. At most `index`; a
   * point at or below the current compaction compacts nothing.
   */
  compactTo?: number;
}

function invalid(message: string): RaftwalError {
  return new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, message);
}

export class RaftStorage {
  private hard: HardState;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: RaftwalError | undefined;
  private closed = false;

  private constructor(
    readonly directory: string,
    private readonly hardStateFile: HardStateFile,
    private readonly snapshots: SnapshotStore,
    private readonly wal: Wal,
    readonly recovery: RaftStorageRecovery,
    recoveredHardState: HardState,
    private readonly fs: FileSystem,
    private readonly lock: DirectoryLock,
  ) {
    this.hard = recoveredHardState;
  }

  /**
   * The current snapshot's metadata: the snapshot store's, never a copy kept here. The store
   * switches its metadata and the file `readSnapshotChunk` reads in one assignment, once the
   * new snapshot is durable (SnapshotStore.adopt), so a reader never sees the one without the
   * other: a leader streaming a snapshot reads the meta, then chunks, in one turn, and a
   * changed meta restarts its transfer (src/raft/leader.ts, sendSnapshotChunks). A copy
   * updated after the store's awaits let the sender read the new, shorter file under the old
   * meta ("snapshot N payload ends at 247 of 269", src/torture/TORTURE.md).
   */
  private get snapshot(): Readonly<SnapshotMeta> {
    return this.snapshots.currentMeta() ?? NO_SNAPSHOT;
  }

  /** @internal Use openRaftStorage. */
  static async open(directory: string, options: RaftStorageOptions = {}): Promise<RaftStorage> {
    const fs = options.fs ?? new NodeFileSystem();
    await fs.ensureDirectory(directory);
    // Before anything is read: a second process on a live node's directory must not even
    // replay it (it would elect itself and overwrite the live node's term and vote).
    const lock = await fs.lockDirectory(directory);
    try {
      return await RaftStorage.openLocked(directory, fs, options, lock);
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
  }

  private static async openLocked(directory: string, fs: FileSystem, options: RaftStorageOptions, lock: DirectoryLock): Promise<RaftStorage> {
    const repair: RepairContext | undefined = options.onCorruption === "repair" ? { report: {}, fs, dataDirectory: directory } : undefined;
    const report = repair?.report;
    const hardStateFile = await openHardState(fs, join(directory, HARD_STATE_DIRECTORY_NAME), repair);
    const snapshots = await SnapshotStore.open(join(directory, SNAPSHOT_DIRECTORY_NAME), { fs, retainCount: options.snapshotRetainCount });
    const walDirectory = join(directory, WAL_DIRECTORY_NAME);
    const walOptions = { ...options.wal, fs };
    let wal: Wal;
    try {
      wal = await openWal(walDirectory, walOptions, repair);
      if (repair) wal = await settleWalBehindSnapshot(wal, walDirectory, walOptions, snapshots.newestMeta() ?? NO_SNAPSHOT, repair);
    } catch (error) {
      await snapshots.close();
      throw error;
    }
    const recovery: RaftStorageRecovery = {
      hardState: { state: hardStateFile.get(), fileExisted: hardStateFile.existedAtOpen },
      snapshot: snapshots.recovery,
      wal: wal.recovery,
      actions: [],
      warnings: [],
      ...(report && damaged(report) ? { damage: report } : {}),
    };
    let hard: HardState;
    try {
      hard = await reconcile(directory, hardStateFile.get(), snapshots, wal, recovery, repair);
      if (repair) recovery.repairMarker = await readRepairMarker(fs, directory);
    } catch (error) {
      await wal.close().catch(() => undefined);
      await snapshots.close();
      throw error;
    }
    return new RaftStorage(directory, hardStateFile, snapshots, wal, recovery, hard, fs, lock);
  }

  // ---- the core's log reads (RaftLogStorage, synchronous) ----------------------------------

  hardState(): HardState {
    return { ...this.hard };
  }

  snapshotMeta(): SnapshotMeta {
    return { ...this.snapshot, config: copyClusterConfig(this.snapshot.config) };
  }

  /** The newest snapshot's index (snapshotMeta().index without copying its configuration). */
  snapshotIndex(): number {
    return this.snapshot.index;
  }

  /** The first entry still in the log: at most the snapshot's index + 1 (a catch-up tail may lie behind the snapshot). */
  firstIndex(): number {
    return this.wal.compactedIndex() + 1;
  }

  lastIndex(): number {
    return Math.max(this.snapshot.index, this.wal.lastIndex());
  }

  term(index: number): number {
    this.checkRange(index, index);
    if (index === this.snapshot.index) return this.snapshot.term;
    return this.wal.term(index);
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    if (hi <= lo) return [];
    this.checkRange(lo, hi - 1);
    if (lo < this.firstIndex()) throw new RaftwalError(WalErrorCode.COMPACTED, `entry ${lo} is compacted (the log starts at ${this.firstIndex()})`);
    return this.wal.entries(lo, hi, bytesMax);
  }

  /** Indexes of the log's entries whose type is not ENTRY_NORMAL (the WAL keeps them in its index). */
  typedEntryIndexes(): number[] {
    return this.wal.typedEntryIndexes().filter((index) => index > this.snapshot.index);
  }

  readSnapshotChunk(offset: number, bytesMax: number): Uint8Array {
    return this.snapshots.readChunk(offset, bytesMax);
  }

  private checkRange(lo: number, hi: number): void {
    const compacted = this.wal.compactedIndex();
    if (lo < compacted) {
      throw new RaftwalError(WalErrorCode.COMPACTED, `index ${lo} is compacted (the log is compacted up to ${compacted}, the snapshot covers up to ${this.snapshot.index})`);
    }
    const last = this.lastIndex();
    if (hi > last) throw new RaftwalError(WalErrorCode.UNAVAILABLE, `index ${hi} is beyond the last index ${last}`);
  }

  // ---- host-side writers ------------------------------------------------------------------

  /**
   * Runs writers one at a time, because each composite write spans parts whose order the
   * durability contract fixes (a snapshot durable before the WAL compacts to it; entries
   * durable before a hard state whose commit covers them), and each writer checks its
   * preconditions against the durable effect of the previous one. The first failure of
   * any part makes every later write fail.
   */
  private serialize<T>(name: string, run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (this.closed) throw new RaftwalError(WalErrorCode.CLOSED, `storage ${this.directory} is closed`);
      if (this.failure) throw this.failure;
      try {
        return await run();
      } catch (error) {
        const partFailure = this.hardStateFile.failed() ?? this.snapshots.failed() ?? this.wal.failed();
        if (partFailure && !this.failure) {
          this.failure = new RaftwalError(WalErrorCode.FAILED, `storage ${this.directory}: ${name} failed; refusing further writes: ${partFailure.message}`, {
            cause: partFailure,
          });
        }
        throw error;
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** The failure that made this storage refuse writes, if any. */
  failed(): Error | undefined {
    return this.failure ?? this.hardStateFile.failed() ?? this.snapshots.failed() ?? this.wal.failed();
  }

  /** Makes `state` the durable hard state (step 4 of the durability order). */
  saveHardState(state: HardState): Promise<void> {
    return this.serialize("saveHardState", async () => {
      const current = this.hard;
      // The file may differ from `current`: open raises floors in memory (raiseHardStateFloors)
      // and, repairing, clips the commit to the log's end. Nothing to write only when the
      // file holds this state and it is the one in force: a repaired node saving the commit
      // the file kept must make it current again (else its snapshot there is refused).
      const durable = this.hardStateFile.get();
      if (sameHardState(state, durable) && sameHardState(state, current)) return;
      if (state.term < current.term) throw invalid(`hard state term ${state.term} is below the durable term ${current.term}`);
      if (state.term === current.term && current.vote !== 0 && state.vote !== current.vote) {
        throw invalid(`hard state vote ${state.vote} in term ${state.term} replaces the durable vote ${current.vote} (at most one vote per term, section 5.2)`);
      }
      const last = this.lastIndex();
      if (state.commit > last) {
        throw invalid(`hard state commit ${state.commit} is ahead of the log's last index ${last}: make the entries durable first`);
      }
      await this.hardStateFile.save(state);
      this.hard = this.hardStateFile.get();
    });
  }

  /**
   * Appends entries durably. If `entries[0].index` is at or below the last index, the log
   * is first truncated from there (section 5.3). Entries at or below the snapshot's index
   * are already covered by it and are skipped.
   */
  append(entries: Entry[]): Promise<void> {
    return this.serialize("append", async () => {
      const fresh = entries.filter((entry) => entry.index > this.snapshot.index);
      if (fresh.length === 0) return;
      // The WAL checks that indexes are contiguous and leave no gap; only the composite
      // knows the durable commit index, so only it can refuse to truncate below it.
      const first = fresh[0].index;
      if (first <= this.lastIndex() && first <= this.hard.commit) {
        throw invalid(`appending at ${first} would truncate committed entries (commit index ${this.hard.commit})`);
      }
      // The WAL truncates from `first` (if at or below its last index) in the same batch
      // as the new entries: a crash leaves either the old log or the new one.
      await this.wal.append(fresh);
    });
  }

  /** Writes one chunk of a snapshot received from a leader (step 1); durable when it resolves. */
  writeSnapshotChunk(chunk: SnapshotChunk): Promise<void> {
    return this.serialize("writeSnapshotChunk", () => this.snapshots.writeIncomingChunk(chunk));
  }

  /**
   * Installs the fully received snapshot `meta` (step 2): the snapshot becomes durable and
   * current, then the log up to meta.index is discarded, keeping later entries only if the
   * log holds meta.index with meta.term (section 7).
   */
  installSnapshot(meta: SnapshotMeta): Promise<void> {
    return this.serialize("installSnapshot", async () => {
      if (meta.index <= this.snapshot.index) {
        throw invalid(`snapshot at index ${meta.index} is not newer than the current one at ${this.snapshot.index}`);
      }
      // Durable and current once it resolves: a crash now is completed by open (reconcile).
      const installed = await this.snapshots.installIncoming(meta);
      await compactLogTo(this.wal, installed);
    });
  }

  /**
   * Application side (step 5): writes a snapshot of the state machine covering entries up to
   * `target.index` (committed, at most the last index), streamed from `data`; once it is
   * durable, compacts the WAL up to `target.compactTo` (default: the snapshot's index).
   * Resolves with the snapshot's metadata.
   */
  async createSnapshot(target: SnapshotTargetInput, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<SnapshotMeta> {
    const index = this.checkSnapshotTarget(target);
    const compactTo = target.compactTo ?? index;
    if (!Number.isSafeInteger(compactTo) || compactTo < 0 || compactTo > index) throw invalid(`compactTo ${compactTo} must be in [0, ${index}] (the snapshot's index)`);
    const term = this.term(index);
    if (target.term !== undefined && target.term !== term) throw invalid(`snapshot term ${target.term} differs from the log's term ${term} at ${index}`);
    // The payload is written and fsynced outside the writers' queue: a large snapshot does
    // not hold up appends. Only making it current (rename, then compaction) takes a turn.
    const writer = await this.snapshots.createWriter({ index, term, config: target.config });
    try {
      for await (const chunk of data) await writer.write(chunk);
      await writer.seal();
    } catch (error) {
      await writer.abort().catch(() => undefined);
      throw error;
    }
    return this.serialize("createSnapshot", async () => {
      if (index <= this.snapshot.index) {
        // A newer snapshot was installed meanwhile (from the leader): this one is not needed.
        await writer.abort();
        return this.snapshotMeta();
      }
      // Durable and current once it resolves: only now may the log behind it go.
      const meta = await writer.finish();
      if (compactTo > this.wal.compactedIndex()) await this.wal.compact(compactTo, this.wal.term(compactTo));
      return meta;
    });
  }

  /** A snapshot target's index, checked against what is durable now; returns it. */
  private checkSnapshotTarget(target: SnapshotTargetInput): number {
    if (this.closed) throw new RaftwalError(WalErrorCode.CLOSED, `storage ${this.directory} is closed`);
    const failure = this.failed();
    if (failure) throw failure;
    const { index } = target;
    if (!Number.isSafeInteger(index) || index <= this.snapshot.index) {
      throw invalid(`snapshot index ${index} must be above the current snapshot's ${this.snapshot.index}`);
    }
    if (index > this.hard.commit) throw invalid(`snapshot index ${index} is above the durable commit index ${this.hard.commit}`);
    return index;
  }


  /**
   * What a repair-mode open lost, for the Raft core (RaftConfig.damage): the log now ends
   * before `lostFromIndex`; undefined when nothing was damaged.
   */
  damage(): StorageDamageSummary | undefined {
    const marker = this.recovery.repairMarker;
    if (marker === undefined) return undefined;
    return {
      lostFromIndex: marker.logLost ? this.lastIndex() + 1 : 0,
      lostToIndex: Math.max(marker.lostToIndex, this.lastIndex()),
      hardStateLost: marker.hardStateLost,
    };
  }

  /** The node's peers repaired what was lost: the directory is whole again (removes the repair mark durably). */
  markRepaired(): Promise<void> {
    return this.serialize("markRepaired", async () => {
      await clearRepairMarker(this.fs, this.directory);
      this.recovery.repairMarker = undefined;
    });
  }

  /** Streams the current snapshot's payload (checksum verified at the end). */
  readSnapshot(): AsyncGenerator<Uint8Array> {
    return this.snapshots.openReader();
  }

  /** Waits for pending writes, then closes every part and lets the directory's lock go. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    try {
      await this.wal.close();
      await this.snapshots.close();
    } finally {
      await this.lock.release();
    }
  }
}

/**
 * Records in the WAL that everything up to (meta.index, meta.term) is in a snapshot. If the
 * log holds meta.index with meta.term, later entries are kept; otherwise the whole log is
 * discarded (section 7).
 */
async function compactLogTo(wal: Wal, meta: SnapshotMeta): Promise<void> {
  if (wal.compactedIndex() >= meta.index) return;
  await wal.compact(meta.index, meta.term);
}

/** Step 4 of open; returns the hard state the core starts from (see raiseHardStateFloors). */
async function reconcile(
  directory: string,
  hard: HardState,
  snapshots: SnapshotStore,
  wal: Wal,
  recovery: RaftStorageRecovery,
  repair: RepairContext | undefined,
): Promise<HardState> {
  const snapshot = snapshots.newestMeta() ?? NO_SNAPSHOT;
  for (const skipped of snapshots.recovery.skippedCorrupt) {
    recovery.warnings.push(`snapshot ${skipped.name} is corrupt and was skipped: ${skipped.problem}`);
  }
  if (snapshots.recovery.skippedCorrupt.length > 0) {
    recovery.warnings.push(
      snapshot.index > 0
        ? `recovering from the older snapshot at index ${snapshot.index} (term ${snapshot.term}) instead`
        : "no valid snapshot remains",
    );
  }
  const torn = wal.recovery.tornTail;
  if (torn) {
    recovery.actions.push(
      `cut a torn tail of ${torn.bytes} bytes from ${torn.segment} at byte offset ${torn.offset} (${torn.reason})${torn.savedTo ? `, saved to ${torn.savedTo}` : ""}`,
    );
  }
  const compactedIndex = wal.compactedIndex();
  if (snapshot.index > compactedIndex) {
    // The WAL holding the snapshot's entry means the log behind it is the snapshot's own
    // history (Log Matching, section 5.3): a catch-up tail, kept. Otherwise an install
    // from the leader was interrupted before it discarded the log it replaces.
    const holdsSnapshotEntry = snapshot.index <= wal.lastIndex() && wal.term(snapshot.index) === snapshot.term;
    if (!holdsSnapshotEntry) {
      await wal.compact(snapshot.index, snapshot.term);
      recovery.actions.push(`compacted the log to the snapshot at index ${snapshot.index} (term ${snapshot.term}), discarding the log it replaces (an interrupted snapshot install)`);
    }
  } else if (snapshot.index < compactedIndex) {
    throw new RaftwalError(
      WalErrorCode.SNAPSHOT_CORRUPT,
      `${directory}: the log is compacted up to index ${compactedIndex} but the newest valid snapshot covers only up to ${snapshot.index}` +
        (snapshots.recovery.skippedCorrupt.length > 0
          ? ` (newer snapshots are corrupt: ${snapshots.recovery.skippedCorrupt.map((s) => `${s.name}: ${s.problem}`).join("; ")})`
          : " (the snapshot that covered it is missing)") +
        "; the entries in between are lost",
    );
  } else if (snapshot.index > 0 && wal.compactedTerm() !== snapshot.term) {
    throw new RaftwalError(
      WalErrorCode.CORRUPT,
      `${directory}: the log is compacted to (index ${compactedIndex}, term ${wal.compactedTerm()}) but the snapshot there has term ${snapshot.term}`,
    );
  }
  const lastIndex = Math.max(snapshot.index, wal.lastIndex());
  if (hard.commit > lastIndex && repair) {
    // Acknowledged entries are missing: in repair mode they are lost entries to fetch again.
    const report = repair.report;
    await writeRepairMarker(repair.fs, repair.dataDirectory, { logLost: true, lostToIndex: hard.commit, hardStateLost: false });
    recovery.damage = report;
    report.log ??= { segment: "", offset: 0, reason: `the hard state's commit index ${hard.commit} is ahead of the log`, firstLostIndex: lastIndex + 1, lastKnownIndex: hard.commit, damagedEntries: [], intactEntriesAfter: 0, setAside: [] };
    report.log.lastKnownIndex = Math.max(report.log.lastKnownIndex, hard.commit);
    hard = { ...hard, commit: lastIndex };
  }
  if (hard.commit > lastIndex) {
    throw new RaftwalError(
      WalErrorCode.CORRUPT,
      `${directory}: the hard state's commit index ${hard.commit} is ahead of the log's last index ${lastIndex}: acknowledged entries are missing`,
    );
  }
  return raiseHardStateFloors(hard, snapshot, lastIndex === snapshot.index ? snapshot.term : wal.term(lastIndex), recovery);
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The hard state is saved after the entries and snapshot of the same Ready (durability
 * order above), so a crash in between leaves it behind them. Two floors are restored in
 * memory (they become durable with the next save):
 * - term >= the last entry's term, with no vote: the node never voted durably in that
 *   term (a vote is saved before it is sent, and would have raised the saved term);
 * - commit >= the snapshot's index: a snapshot holds only committed entries.
 */
function raiseHardStateFloors(hard: HardState, snapshot: SnapshotMeta, lastTerm: number, recovery: RaftStorageRecovery): HardState {
  const raised = { ...hard };
  if (lastTerm > hard.term) {
    raised.term = lastTerm;
    raised.vote = 0;
    recovery.actions.push(`raised the term from ${hard.term} to the last entry's term ${lastTerm} (no vote): the hard state was saved behind the log`);
  }
  if (snapshot.index > hard.commit) {
    raised.commit = snapshot.index;
    recovery.actions.push(`raised the commit index from ${hard.commit} to the snapshot's index ${snapshot.index}`);
  }
  return raised;
}

/** Opens (creating if needed) the storage of one node in `directory` and recovers it. */
export function openRaftStorage(directory: string, options: RaftStorageOptions = {}): Promise<RaftStorage> {
  return RaftStorage.open(directory, options);
}
