/**
 * A simulated node's disk: the core's MemoryStorage (log, hard state, newest
 * snapshot) plus the incoming snapshot being received in chunks. Whatever is written
 * here survives a crash; everything else a node holds does not. All storage writes
 * of the host go through this file, so it is the one place that knows MemoryStorage's
 * writer API.
 *
 * The disk also decodes, on its own, the configuration entries it holds (the snapshot's
 * configuration, then every CLUSTER_CONFIG entry of the log after it): the checkers
 * compare the core's configuration in force with this, and the host writes a snapshot's
 * configuration from it. It shares no code with the core's ConfigLog.
 *
 * Storage damage (disk-damage.ts) rewrites the disk to what a repair-mode open of the real
 * storage keeps (`rewrite`), and records what was lost in a durable repair mark, as
 * storage/repair-marker.ts does: the mark survives crashes until the host removes it, and
 * `damageForCore()` turns it into the core's StorageDamage exactly as RaftStorage.damage()
 * does. Like the real snapshot store, the disk keeps a few older snapshots, so a damaged
 * newest one leaves an older one to restart from.
 */
import { clusterConfigCodec, emptyClusterConfig, EntryType, type ClusterConfig } from "../../src/proto/schema.js";
import { MemoryStorage } from "../../src/raft/index.js";
import type { Entry, HardState, SnapshotChunk, SnapshotMeta, StorageDamage } from "../../src/raft/types.js";

/** A configuration and the index of the entry (or snapshot) it comes from. */
export interface IndexedConfig {
  index: number;
  config: ClusterConfig;
}

/** Decodes a CLUSTER_CONFIG entry's data (the whole configuration, raftwal.proto). */
export function decodeConfig(entry: Entry): ClusterConfig {
  return clusterConfigCodec.decode(entry.data);
}

interface IncomingSnapshot {
  meta: SnapshotMeta;
  parts: Uint8Array[];
  bytes: number;
  done: boolean;
}

/** A snapshot kept on the disk: its metadata and payload. */
export interface StoredSnapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** The durable repair mark (storage/repair-marker.ts): what was lost and is not yet repaired. */
export interface RepairMark {
  logLost: boolean;
  /** The highest index the log may have held before the damage. */
  lostToIndex: number;
  hardStateLost: boolean;
}

/** Snapshots kept besides the newest, as the real store keeps SNAPSHOT_RETAIN_COUNT_DEFAULT - 1 older ones. */
const OLDER_SNAPSHOTS_KEPT = 2;

function sameMeta(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term && a.sizeBytes === b.sizeBytes;
}

export class SimDisk {
  private current = new MemoryStorage();
  /** Older snapshots than the storage's newest one, newest first (at most OLDER_SNAPSHOTS_KEPT). */
  private older: StoredSnapshot[] = [];
  /** Set by damage, removed by the host once the core is whole again; survives crashes. */
  private mark: RepairMark | undefined;
  private incoming: IncomingSnapshot | undefined;
  /** Chunks written, for tests that check a snapshot really went in several chunks. */
  snapshotChunksWritten = 0;
  snapshotsInstalled = 0;
  snapshotsTaken = 0;
  /** The log's configuration entries above the snapshot, ascending, decoded when written. */
  private configs: IndexedConfig[] = [];
  /** The newest snapshot's configuration (the same object until the snapshot changes). */
  private snapshotBase: IndexedConfig = { index: 0, config: emptyClusterConfig() };

  /** The durable log, hard state and newest snapshot (a new object after `rewrite`: do not keep it across one). */
  get storage(): MemoryStorage {
    return this.current;
  }

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
    this.keepOlder();
    this.storage.applySnapshot(meta, data);
    // The entries after the snapshot stay only when the log matched it (MemoryStorage.applySnapshot).
    const last = this.storage.lastIndex();
    this.configs = this.configs.filter((c) => c.index > meta.index && c.index <= last);
    this.snapshotBase = { index: meta.index, config: this.storage.snapshotMeta().config };
    this.snapshotsInstalled += 1;
    return data;
  }

  appendEntries(entries: Entry[]): void {
    // Entries at or below the compaction point are skipped; the first one written truncates the log from its index.
    const written = entries.filter((e) => e.index >= this.storage.firstIndex());
    this.storage.append(entries);
    if (written.length === 0) return;
    this.configs = this.configs.filter((c) => c.index < written[0]!.index);
    for (const entry of written) if (entry.type === EntryType.CLUSTER_CONFIG) this.configs.push({ index: entry.index, config: decodeConfig(entry) });
  }

  /** The configuration entries of the durable log above the snapshot, ascending (do not modify). */
  configEntries(): readonly IndexedConfig[] {
    return this.configs;
  }

  /** The snapshot's configuration at its index (index 0 and no configuration without a snapshot). */
  snapshotConfig(): IndexedConfig {
    return this.snapshotBase;
  }

  /** The configuration in force at `index` (the latest at or below it), for index >= the snapshot's index. */
  configAt(index: number): IndexedConfig {
    for (let i = this.configs.length - 1; i >= 0; i--) if (this.configs[i]!.index <= index) return this.configs[i]!;
    const base = this.snapshotConfig();
    if (index < base.index) throw new Error(`configuration at ${index} asked of a disk whose snapshot is at ${base.index}`);
    return base;
  }

  /** The configuration in force by the durable log alone: its latest configuration entry, else the snapshot's. */
  latestConfig(): IndexedConfig {
    return this.configs[this.configs.length - 1] ?? this.snapshotConfig();
  }

  setHardState(hard: HardState): void {
    this.storage.setHardState(hard);
  }

  /** The application's own snapshot: store it, then compact the log up to `compactIndex` (at most its index: the entries between stay, a catch-up tail). */
  takeSnapshot(meta: SnapshotMeta, data: Uint8Array, compactIndex: number): void {
    this.keepOlder();
    this.storage.createSnapshot(meta, data);
    this.storage.compact(compactIndex);
    this.configs = this.configs.filter((c) => c.index > meta.index);
    this.snapshotBase = { index: meta.index, config: this.storage.snapshotMeta().config };
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

  /** The newest snapshot is about to be replaced: keep it among the older ones. */
  private keepOlder(): void {
    const meta = this.storage.snapshotMeta();
    if (meta.index === 0) return;
    this.older = [{ meta, data: this.readSnapshotData() }, ...this.older].slice(0, OLDER_SNAPSHOTS_KEPT);
  }

  /** Whether the storage holds a snapshot (index 0: none yet). */
  private hasNewestSnapshot(): boolean {
    return this.storage.snapshotMeta().index !== 0;
  }

  /** How many snapshots snapshots() would return, without reading their data. */
  snapshotCount(): number {
    return (this.hasNewestSnapshot() ? 1 : 0) + this.older.length;
  }

  /** The snapshots kept, newest first: the storage's newest, then the older ones. */
  snapshots(): StoredSnapshot[] {
    if (!this.hasNewestSnapshot()) return [...this.older];
    return [{ meta: this.storage.snapshotMeta(), data: this.readSnapshotData() }, ...this.older];
  }

  /**
   * Replaces the disk's content with what survives damage (disk-damage.ts): `snapshots`
   * newest first (may be empty), the durable log kept (`log.entries`, contiguous after the
   * entry `log.compacted` names), and `hard`. As the real storage's reconcile does, a log that
   * still holds the newest snapshot's entry keeps the entries behind it (its catch-up tail);
   * otherwise the log restarts empty at the snapshot, keeping only what follows it.
   * The incoming snapshot's chunks are dropped (a restart starts any transfer anew).
   */
  rewrite(snapshots: readonly StoredSnapshot[], log: KeptLog, hard: HardState): void {
    const newest = snapshots[0];
    const storage = newest !== undefined && keepsTailBehind(newest.meta, log) ? storageWithTail(newest, log) : storageAfter(newest, log.entries);
    storage.setHardState(hard);
    this.current = storage;
    this.older = snapshots.slice(1, 1 + OLDER_SNAPSHOTS_KEPT);
    this.incoming = undefined;
    this.snapshotBase = { index: newest?.meta.index ?? 0, config: storage.snapshotMeta().config };
    this.configs = [];
    const after = newest?.meta.index ?? 0;
    for (const entry of log.entries) if (entry.index > after && entry.type === EntryType.CLUSTER_CONFIG) this.configs.push({ index: entry.index, config: decodeConfig(entry) });
  }

  /** The durable log as `rewrite` takes it: every entry from the first still held, and the compaction point before them. */
  keptLog(): KeptLog {
    const storage = this.current;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    return { compacted: { index: first - 1, term: storage.term(first - 1) }, entries: last < first ? [] : storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) };
  }

  /** The repair mark, if the disk is under repair (do not modify). */
  repairMark(): Readonly<RepairMark> | undefined {
    return this.mark;
  }

  /** Records a loss in the repair mark, merged with an earlier one (the union of what was lost), as writeRepairMarker does. */
  markRepairing(loss: RepairMark): void {
    const previous = this.mark;
    this.mark = previous
      ? { logLost: previous.logLost || loss.logLost, lostToIndex: Math.max(previous.lostToIndex, loss.lostToIndex), hardStateLost: previous.hardStateLost || loss.hardStateLost }
      : { ...loss };
  }

  /** The host saw the core whole again: the repair mark goes. */
  clearRepairMark(): void {
    this.mark = undefined;
  }

  /** What the core is told at start (RaftConfig.damage), computed from the mark as RaftStorage.damage() does. */
  damageForCore(): StorageDamage | undefined {
    const mark = this.mark;
    if (mark === undefined) return undefined;
    const lastIndex = this.storage.lastIndex();
    return { lostFromIndex: mark.logLost ? lastIndex + 1 : 0, lostToIndex: Math.max(mark.lostToIndex, lastIndex), hardStateLost: mark.hardStateLost };
  }
}

/** A durable log to keep: `entries` follow the entry `compacted` names (index 0: the log starts at 1). */
export interface KeptLog {
  compacted: { index: number; term: number };
  entries: readonly Entry[];
}

/** The log holds the snapshot's own entry, with entries behind it (a catch-up tail). */
function keepsTailBehind(snapshot: SnapshotMeta, log: KeptLog): boolean {
  if (log.compacted.index >= snapshot.index) return false;
  const entry = log.entries[snapshot.index - log.compacted.index - 1];
  return entry !== undefined && entry.index === snapshot.index && entry.term === snapshot.term;
}

/** Only what follows the snapshot (if any): entries at or below it are skipped by MemoryStorage.append. */
function storageAfter(newest: StoredSnapshot | undefined, entries: readonly Entry[]): MemoryStorage {
  const storage = new MemoryStorage();
  if (newest !== undefined) storage.applySnapshot(newest.meta, newest.data);
  storage.append([...entries]);
  return storage;
}

/**
 * The whole kept log behind the snapshot. MemoryStorage moves its compaction point only
 * with a snapshot: a placeholder at `log.compacted` (as if one had been installed there),
 * then the log, then the newest snapshot taken over it, which replaces the placeholder.
 */
function storageWithTail(newest: StoredSnapshot, log: KeptLog): MemoryStorage {
  const storage = new MemoryStorage();
  if (log.compacted.index > 0) storage.applySnapshot({ ...newest.meta, index: log.compacted.index, term: log.compacted.term }, new Uint8Array());
  storage.append([...log.entries]);
  storage.createSnapshot(newest.meta, newest.data);
  return storage;
}
