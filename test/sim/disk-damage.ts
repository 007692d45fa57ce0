/**
 * Storage damage on a simulated disk, at rest (the node is down; its next start finds it).
 * Each kind leaves the disk as a repair-mode open of the real storage leaves a data
 * directory (storage/salvage.ts, repair-open.ts, raft-storage.ts reconcile) and records the
 * loss in the disk's repair mark, merged with any earlier one:
 *
 *   - flip-record: a record of the durable log fails its checksum. The log keeps its intact
 *     prefix before the damaged entry; every later record is set aside (the log stays
 *     contiguous); the log may have held up to its old last index. Damage above the
 *     snapshot keeps the catch-up tail behind it; damage in the tail empties the log at it.
 *   - lose-segment: a sealed segment (a range of entries that is not the newest) is gone: the
 *     same outcome from the segment's first index (later segments are set aside too).
 *   - damage-snapshot: the newest snapshot fails its checksum, and perhaps older ones too:
 *     the node restarts at the newest valid older snapshot, or none. When the log's catch-up
 *     tail still reaches back to it, nothing is lost: it restarts there with its log and no
 *     repair starts (REPAIR.md). Otherwise the log restarts empty there; everything after
 *     that snapshot is lost, up to the old last index.
 *   - damage-hard-state: term and vote are lost. The restart's hard state is the storage's
 *     floors over a missing file: the last log term, no vote, commit at the snapshot index.
 *
 * A lost log also lowers a commit index now ahead of the log (reconcile does: the mark then
 * covers that commit index too). Which record, segment or snapshots are hit is drawn from
 * the rng; a kind the disk cannot suffer (an empty log, no snapshot) returns undefined.
 */
import type { Rng } from "../../src/rng.js";
import type { HardState } from "../../src/raft/types.js";
import type { SimDisk, StoredSnapshot } from "./disk.js";

export const DAMAGE_KINDS = ["flip-record", "lose-segment", "damage-snapshot", "damage-hard-state"] as const;
export type DamageKind = (typeof DAMAGE_KINDS)[number];

/** What one damage did, for traces and reports. */
export interface DamageOutcome {
  kind: DamageKind;
  /** The first log index lost (0 when the log was not hit). */
  lostFromIndex: number;
  /** The highest index the log may have held (0 when the log was not hit). */
  lostToIndex: number;
  hardStateLost: boolean;
  detail: string;
}

/** Probability that a snapshot older than the damaged newest one is damaged too. */
const OLDER_SNAPSHOT_DAMAGE_PROBABILITY = 0.3;

/** Damages `disk` (its node must be down) with `kind`; undefined when the disk holds nothing that kind can hit. */
export function damageDisk(disk: SimDisk, kind: DamageKind, rng: Rng): DamageOutcome | undefined {
  switch (kind) {
    case "flip-record":
      return flipRecord(disk, rng);
    case "lose-segment":
      return loseSegment(disk, rng);
    case "damage-snapshot":
      return damageSnapshot(disk, rng);
    case "damage-hard-state":
      return damageHardState(disk);
  }
}

/**
 * The log is kept up to `lostFrom - 1`; the rest is lost. Damage above the snapshot keeps
 * the catch-up tail behind it; damage in the tail leaves the log empty at the snapshot
 * (SimDisk.rewrite, as the storage's reconcile).
 */
function cutLog(disk: SimDisk, kind: DamageKind, lostFrom: number, detail: string): DamageOutcome {
  const storage = disk.storage;
  const hard = storage.hardState();
  const lastIndex = storage.lastIndex();
  const log = disk.keptLog();
  const lostTo = Math.max(lastIndex, hard.commit);
  disk.markRepairing({ logLost: true, lostToIndex: lostTo, hardStateLost: false });
  disk.rewrite(disk.snapshots(), { ...log, entries: log.entries.filter((e) => e.index < lostFrom) }, { ...hard, commit: Math.min(hard.commit, lostFrom - 1) });
  return { kind, lostFromIndex: lostFrom, lostToIndex: lostTo, hardStateLost: false, detail };
}

/** A flipped bit in the record of entry `index` (a scenario's own pick): the log from there on is lost. */
export function flipRecordAt(disk: SimDisk, index: number): DamageOutcome {
  const storage = disk.storage;
  if (index < storage.firstIndex() || index > storage.lastIndex()) throw new Error(`entry ${index} is not in the log [${storage.firstIndex()}..${storage.lastIndex()}]`);
  return cutLog(disk, "flip-record", index, `a flipped bit in the record of entry ${index} (log [${storage.firstIndex()}..${storage.lastIndex()}])`);
}

function flipRecord(disk: SimDisk, rng: Rng): DamageOutcome | undefined {
  const storage = disk.storage;
  if (storage.lastIndex() < storage.firstIndex()) return undefined;
  const index = rng.between(storage.firstIndex(), storage.lastIndex());
  return cutLog(disk, "flip-record", index, `a flipped bit in the record of entry ${index} (log [${storage.firstIndex()}..${storage.lastIndex()}])`);
}

function loseSegment(disk: SimDisk, rng: Rng): DamageOutcome | undefined {
  const storage = disk.storage;
  // A sealed segment is not the newest: at least one entry follows it.
  if (storage.lastIndex() - 1 < storage.firstIndex()) return undefined;
  const from = rng.between(storage.firstIndex(), storage.lastIndex() - 1);
  const to = rng.between(from, storage.lastIndex() - 1);
  return cutLog(disk, "lose-segment", from, `the sealed segment of entries ${from}..${to} lost (log [${storage.firstIndex()}..${storage.lastIndex()}])`);
}

function damageSnapshot(disk: SimDisk, rng: Rng): DamageOutcome | undefined {
  const count = disk.snapshotCount();
  if (count === 0) return undefined;
  let damaged = 1;
  while (damaged < count && rng.chance(OLDER_SNAPSHOT_DAMAGE_PROBABILITY)) damaged += 1;
  return damageNewestSnapshots(disk, damaged);
}

/** The newest `damaged` snapshots fail their checksums (a scenario's own pick, or damageSnapshot's draw). */
export function damageNewestSnapshots(disk: SimDisk, damaged: number): DamageOutcome {
  const snapshots = disk.snapshots();
  if (!(damaged >= 1 && damaged <= snapshots.length)) throw new Error(`cannot damage the newest ${damaged} of ${snapshots.length} snapshots`);
  const valid: StoredSnapshot[] = snapshots.slice(damaged);
  const storage = disk.storage;
  const hard = storage.hardState();
  const restartAt = valid[0]?.meta.index ?? 0;
  const what = `snapshots ${snapshots.slice(0, damaged).map((s) => s.meta.index).join(",")} damaged: restarts at ${restartAt === 0 ? "no snapshot" : `snapshot ${restartAt}`}`;
  const log = disk.keptLog();
  const held = `[${storage.firstIndex()}..${storage.lastIndex()}]`;
  if (log.compacted.index <= restartAt) {
    // The log reaches back to the snapshot restarted from (a catch-up tail): it holds every
    // entry the damaged snapshots covered, so nothing is lost and no repair starts.
    disk.rewrite(valid, log, hard);
    return { kind: "damage-snapshot", lostFromIndex: 0, lostToIndex: 0, hardStateLost: false, detail: `${what} with its log ${held}, nothing lost` };
  }
  const lostTo = Math.max(storage.lastIndex(), hard.commit);
  disk.markRepairing({ logLost: true, lostToIndex: lostTo, hardStateLost: false });
  disk.rewrite(valid, { compacted: { index: 0, term: 0 }, entries: [] }, { ...hard, commit: Math.min(hard.commit, restartAt) });
  return { kind: "damage-snapshot", lostFromIndex: restartAt + 1, lostToIndex: lostTo, hardStateLost: false, detail: `${what} with an empty log (was ${held})` };
}

function damageHardState(disk: SimDisk): DamageOutcome {
  const storage = disk.storage;
  const before = storage.hardState();
  const lastIndex = storage.lastIndex();
  const hard: HardState = { term: storage.term(lastIndex), vote: 0, commit: storage.snapshotMeta().index };
  disk.markRepairing({ logLost: false, lostToIndex: 0, hardStateLost: true });
  disk.setHardState(hard);
  return { kind: "damage-hard-state", lostFromIndex: 0, lostToIndex: 0, hardStateLost: true, detail: `hard state ${JSON.stringify(before)} lost: restarts with ${JSON.stringify(hard)}` };
}
