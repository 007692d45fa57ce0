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
  /**
   * The configurations of the log, ascending by index; the first is the base (a snapshot's
   * or the initial one), the last is in force. Entries below the newest snapshot stay until
   * compactedTo(): the host may still ask for the configuration at its applied index while
   * a snapshot received from the leader is being installed.
   * Invariant: never empty.
   */
  private history: IndexedClusterConfig[];
  /** Called whenever the configuration in force changes (the Raft instance re-derives its quorums). */
  onChange: () => void = () => undefined;

  constructor(base: IndexedClusterConfig) {
    this.history = [{ index: base.index, config: copyClusterConfig(base.config) }];
  }

  /** The configuration in force: the latest in the log. */
  current(): IndexedClusterConfig {
    return this.history[this.history.length - 1];
  }

  /** The configuration in force at `index` (the latest at or below it); index >= the oldest one kept. */
  at(index: number): ClusterConfig {
    for (let i = this.history.length - 1; i >= 0; i--) {
      if (this.history[i].index <= index) return this.history[i].config;
    }
    return fail(`configuration at ${index} is below the tracked range (from ${this.history[0].index})`);
  }

  /** Start-up: a configuration entry the durable log holds above the base. */
  load(entry: Entry): void {
    if (entry.index <= this.current().index) return;
    this.history.push({ index: entry.index, config: decodeConfigEntry(entry) });
  }

  /**
   * The log from entries[0].index on was replaced by `entries` (an append, after the
   * truncation of a conflicting suffix: section 5.3).
   */
  appended(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const before = this.current();
    this.dropFrom(entries[0].index);
    for (const entry of entries) {
      if (entry.type === EntryType.CLUSTER_CONFIG) this.history.push({ index: entry.index, config: decodeConfigEntry(entry) });
    }
    if (this.current() !== before) this.onChange();
  }

  /**
   * A snapshot up to `index` was accepted (section 7): its configuration is in force at
   * `index`. Configurations at or below `committed` (the commit index before the snapshot)
   * are kept as history; uncommitted ones below the snapshot are gone with the log they
   * came from; later ones stay only when the log after the snapshot is kept.
   */
  restored(index: number, config: ClusterConfig, keepsLog: boolean, committed: number): void {
    const before = this.current();
    const later = keepsLog ? this.history.filter((entry) => entry.index > index) : [];
    this.history = this.history.filter((entry) => entry.index <= committed && entry.index < index);
    this.history.push({ index, config: copyClusterConfig(config) }, ...later);
    if (this.current() !== before) this.onChange();
  }

  /** The log up to `index` went into a snapshot: keep only the configuration in force there and later ones. */
  compactedTo(index: number): void {
    let base = 0;
    while (base + 1 < this.history.length && this.history[base + 1].index <= index) base += 1;
    if (base > 0) this.history = this.history.slice(base);
  }

  private dropFrom(index: number): void {
    let keep = this.history.length;
    while (keep > 1 && this.history[keep - 1].index >= index) keep -= 1;
    if (keep < this.history.length) this.history.length = keep;
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
