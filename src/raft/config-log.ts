/**
 * Which cluster configuration is in force, derived from the log alone.
 *
 * Raft thesis section 4.1: "a server always uses the latest configuration in its log,
 * regardless of whether that entry is committed." raftwal takes a configuration into
 * effect when its entry is appended (the thesis), not when it is applied (etcd), so one
 * mechanism covers every case: the configuration in force is the latest configuration
 * entry in the log, or, when the log holds none, the snapshot's configuration (or the
 * initial one given to a new node). Because it is a function of the log:
 *   - a leader that overwrites an uncommitted configuration entry (section 5.3) puts the
 *     previous configuration back in force on that follower, with no extra rule;
 *   - a restart recovers a change in flight by reading the configuration entries of its
 *     log (storage lists their indexes, so the log is not read whole);
 *   - a snapshot stores the configuration at its index, and installing one replaces it.
 * Apply-time activation would need extra invariants to stay safe (a node could campaign
 * under an older configuration than one already committed: etcd-io/etcd#7625), and
 * would make a single-server change on a two-node cluster impossible to commit once a
 * node is lost.
 *
 * Entries above the newest snapshot are tracked; compaction folds older ones into the
 * base. Configuration entries are rare, so the list stays short.
 */
import { clusterConfigCodec, copyClusterConfig, EntryType, type ClusterConfig, type Entry } from "../proto/schema.js";
import { fail } from "./invariant.js";

export interface IndexedClusterConfig {
  /** The index of the entry that carries it (the snapshot's index for the base). */
  index: number;
  config: ClusterConfig;
}

export class ConfigLog {
  /** The configuration before the first tracked entry: a snapshot's, or the initial one. */
  private base: IndexedClusterConfig;
  /** Configuration entries of the log above `base.index`, ascending. */
  private tracked: IndexedClusterConfig[] = [];
  /** Called whenever the configuration in force changes (the Raft instance re-derives its quorums). */
  onChange: () => void = () => undefined;

  constructor(base: IndexedClusterConfig) {
    this.base = { index: base.index, config: copyClusterConfig(base.config) };
  }

  /** The configuration in force: the latest in the log. */
  current(): IndexedClusterConfig {
    return this.tracked.length > 0 ? this.tracked[this.tracked.length - 1] : this.base;
  }

  /** The configuration in force at `index` (the latest at or below it); index >= the base's. */
  at(index: number): ClusterConfig {
    if (index < this.base.index) fail(`configuration at ${index} is below the tracked range (from ${this.base.index})`);
    let found = this.base;
    for (const entry of this.tracked) {
      if (entry.index > index) break;
      found = entry;
    }
    return found.config;
  }

  /** Start-up: a configuration entry the durable log holds above the base. */
  load(entry: Entry): void {
    if (entry.index <= this.base.index) return;
    this.tracked.push({ index: entry.index, config: decodeConfigEntry(entry) });
  }

  /**
   * The log from entries[0].index on was replaced by `entries` (an append, after the
   * truncation of a conflicting suffix: section 5.3).
   */
  appended(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const before = this.current();
    const from = entries[0].index;
    let keep = this.tracked.length;
    while (keep > 0 && this.tracked[keep - 1].index >= from) keep -= 1;
    if (keep < this.tracked.length) this.tracked.length = keep;
    for (const entry of entries) {
      if (entry.type === EntryType.CLUSTER_CONFIG) this.tracked.push({ index: entry.index, config: decodeConfigEntry(entry) });
    }
    if (this.current() !== before) this.onChange();
  }

  /**
   * A snapshot was accepted (section 7): its configuration is the base; later tracked
   * entries stay only when the log after the snapshot is kept.
   */
  restored(index: number, config: ClusterConfig, keepsLog: boolean): void {
    const before = this.current();
    this.base = { index, config: copyClusterConfig(config) };
    this.tracked = keepsLog ? this.tracked.filter((entry) => entry.index > index) : [];
    if (this.current() !== before) this.onChange();
  }

  /** The log up to `index` went into a snapshot: fold the entries at or below it into the base. */
  compactedTo(index: number): void {
    if (index <= this.base.index) return;
    const config = this.at(index);
    const last = this.tracked.filter((entry) => entry.index <= index).pop();
    this.base = { index: last?.index ?? this.base.index, config };
    this.tracked = this.tracked.filter((entry) => entry.index > index);
  }

  /** Configuration entries not yet known committed would make a second change unsafe (thesis 4.1). */
  hasUncommitted(committed: number): boolean {
    return this.current().index > committed;
  }
}

export function decodeConfigEntry(entry: Entry): ClusterConfig {
  try {
    return clusterConfigCodec.decode(entry.data);
  } catch (error) {
    return fail(`entry ${entry.index} is a configuration entry that does not decode: ${String(error)}`);
  }
}

export function encodeConfigEntry(config: ClusterConfig): Uint8Array {
  return clusterConfigCodec.encode(config);
}
