/**
 * Read-only assessment of a damaged data directory: what a repair-mode open
 * (`openRaftStorage(dir, { onCorruption: "repair" })`, repair-open.ts) would keep, lose and
 * set aside, found without modifying anything. salvage.ts describes a WAL's damage with
 * `assessWal` before it sets the damage aside; `raftwal wal verify` shows the whole plan
 * (`planRepair`) before anyone starts the node.
 *
 * The plan follows the open, step by step:
 *   1. WAL: the log keeps its intact prefix, up to the last whole batch (its COMMIT record)
 *      before the first damaged record. From that record on, the damaged segment's bytes
 *      and every later segment are set aside.
 *   2. Snapshot: the newest snapshot whose checksums verify is used. If the kept WAL is
 *      compacted past it (or to its index in another term), the entries in between are
 *      gone: the whole WAL is set aside and the log restarts empty at that snapshot
 *      ("no valid snapshot at N").
 *   3. The log kept then ends at K = max(that snapshot's index, the kept WAL's last index).
 *   4. The node may have acknowledged up to L: the highest index an intact (checksum-valid)
 *      WAL record names (an entry its own, a COMMIT its batch's last) or a segment header
 *      implies (its first index - 1), the WAL's last index when it is set aside whole, the
 *      hard state's commit, and what an earlier repair's mark (repair-marker.ts) says.
 *      Entries K+1..L are lost and fetched again from the leader. A damaged record names
 *      nothing: its checksum covers header and payload, so a mismatch does not say which
 *      was damaged, and a flipped bit in its index can name any index (2^51 + i: the node
 *      would wait for it forever). L still reaches the log's last index as last written,
 *      which the last batch's COMMIT names: with one damaged record, that COMMIT is intact
 *      unless it is the damaged record, and then either a later segment's header names the
 *      same index (its first index - 1), or the batch ends the active segment with no
 *      intact COMMIT after it, which recovery takes for a torn tail, not damage
 *      (wal/recovery.ts, step 6; src/raft/REPAIR.md, rule 4).
 *   5. A damaged hard-state file is set aside: term and vote are relearned from the voters.
 */
import type { FileSystem } from "./fs/file-system.js";
import type { RepairMarker } from "./repair-marker.js";
import type { CorruptionDetail } from "./wal/errors.js";
import { listSegments, scanWal, type ScannedRecord, type SegmentListing } from "./wal/inspect.js";
import { RECORD_ALIGNMENT_BYTES, RecordType, recordCrcSeed } from "./wal/format.js";
import { parseSegmentFileName } from "./wal/naming.js";
import { scanRecords, surveyTail } from "./wal/segment-reader.js";

/** What a damaged WAL lost. */
export interface LogDamage {
  segment: string;
  offset: number;
  reason: string;
  /** The first index the log lost: its intact prefix ends before it (refined once reopened). */
  firstLostIndex: number;
  /**
   * The highest index an intact (checksum-valid) record or a segment header names: the log
   * may have held up to it. A damaged record's header is never believed (see boundLoss).
   */
  lastKnownIndex: number;
  /**
   * Damaged entry records past the damage whose header can still be believed: intact ones
   * (their batch lost its COMMIT) and damaged ones whose header index is where the log
   * expected it (a header naming another index is damaged too, and names no entry).
   */
  damagedEntries: Array<{ index: number; term: number }>;
  /** Intact entry records found after the damage (discarded with it; the leader resends them). */
  intactEntriesAfter: number;
  /** Where the damaged bytes went (salvage fills it in; empty in an assessment). */
  setAside: string[];
}

/** The log a WAL keeps once its damage, if any, is set aside (step 1). */
export interface KeptWal {
  /** The log's last index after the last whole batch before the damage (or at the end). */
  lastIndex: number;
  /** Entries up to here are compacted into a snapshot. */
  compactedIndex: number;
  /** The term a compact record names for compactedIndex; 0 when none does. */
  compactedTerm: number;
}

export interface WalAssessment {
  kept: KeptWal;
  /** The damage described (given a corruption). */
  damage?: LogDamage;
  /** Segment files a salvage would set aside: the damaged one from its offset on, every later one whole. */
  setAside: Array<{ segment: string; fromOffset?: number }>;
}

/**
 * Reads a WAL (without modifying it) and tells what it keeps and, given the first
 * corruption recovery found (`WalCorruptionError`), what that damage loses. Without a
 * corruption, the kept log is the whole log (a torn tail is not part of it).
 */
export async function assessWal(dir: string, fs: FileSystem, corruption: CorruptionDetail): Promise<WalAssessment & { damage: LogDamage }>;
export async function assessWal(dir: string, fs: FileSystem, corruption?: CorruptionDetail): Promise<WalAssessment>;
export async function assessWal(dir: string, fs: FileSystem, corruption?: CorruptionDetail): Promise<WalAssessment> {
  const listings = await listSegments(dir, fs);
  const start = listings.find((listing) => listing.header !== undefined)?.header?.firstIndex ?? 1;
  const kept: KeptWal = { lastIndex: start - 1, compactedIndex: start - 1, compactedTerm: 0 };
  const damage = corruption && newLogDamage(corruption);
  const damagedSegmentId = corruption ? (parseSegmentFileName(corruption.segment) ?? 0) : Number.MAX_SAFE_INTEGER;
  let compactInBatch: { index: number; term: number } | undefined;
  let baseTermNamed = start === 1;
  let afterDamage = false;
  /** How far the walk went in the damaged segment: it stops at a record it cannot frame. */
  let walkedTo = corruption?.offset ?? 0;
  const expectedIndexAt = expectedEntryIndexes(listings);
  for await (const record of scanWal(dir, fs)) {
    afterDamage ||= corruption !== undefined && (record.segmentId > damagedSegmentId || (record.segmentId === damagedSegmentId && record.offset >= corruption.offset));
    const expectedIndex = expectedIndexAt(record);
    if (damage) boundLoss(damage, record);
    if (afterDamage) {
      if (damage && record.type === "entry") countLost(damage, record, expectedIndex);
      if (record.segmentId === damagedSegmentId) walkedTo = Math.max(walkedTo, record.offset);
      continue;
    }
    if (record.status !== "ok") continue;
    // A batch applies at its COMMIT, whose index is the log's last index after it (wal/recovery.ts, step 4).
    if (record.type === "compact") compactInBatch = { index: record.index, term: record.term };
    if (record.type !== "commit") continue;
    if (compactInBatch && compactInBatch.index >= kept.compactedIndex) {
      Object.assign(kept, { compactedIndex: compactInBatch.index, compactedTerm: compactInBatch.term });
      baseTermNamed = true;
    }
    compactInBatch = undefined;
    kept.lastIndex = record.index;
  }
  if (!corruption || !damage) return { kept, setAside: [] };
  for (const listing of listings) if (listing.header) damage.lastKnownIndex = Math.max(damage.lastKnownIndex, listing.header.firstIndex - 1);
  const damagedListing = listings.find((listing) => listing.segmentId === damagedSegmentId);
  if (damagedListing?.header) {
    const seed = recordCrcSeed(damagedListing.segmentId, damagedListing.header.formatVersion);
    await surveyPastDamage(fs, damagedListing.path, seed, walkedTo, damage);
  }
  let cut = { segmentId: damagedSegmentId, offset: corruption.offset };
  if (!baseTermNamed) {
    // The prefix kept cannot open: no compact record in it names the term of the index its
    // first segment starts after (wal/recovery.ts, step 3). Salvage's next pass sets the
    // first segment aside too, and the log keeps nothing.
    cut = { segmentId: listings[0].segmentId, offset: 0 };
    Object.assign(kept, { lastIndex: 0, compactedIndex: 0, compactedTerm: 0 });
  }
  const setAside = listings
    .filter((listing) => listing.segmentId >= cut.segmentId)
    .map((listing) => (listing.segmentId === cut.segmentId ? { segment: listing.name, fromOffset: cut.offset } : { segment: listing.name }));
  return { kept, setAside, damage };
}

/**
 * The records past where the walk stopped in the damaged segment (`walkedTo`, a record it
 * could not frame: its length may itself be damaged): each whole COMMIT record found beyond
 * it (at an aligned offset, as recovery finds one: wal/recovery.ts, step 6) starts
 * a framed walk again. The COMMIT names its batch's last index; the walk names the rest.
 * Each pass starts past the previous one's end: bounded by the segment's size.
 */
async function surveyPastDamage(fs: FileSystem, path: string, seed: number, walkedTo: number, damage: LogDamage): Promise<void> {
  const file = await fs.open(path, { readOnly: true });
  try {
    let searchFrom = walkedTo + RECORD_ALIGNMENT_BYTES;
    for (;;) {
      const { commits } = await surveyTail(file, searchFrom, searchFrom, { seeds: [seed], recycled: false });
      if (commits.length === 0) return;
      const end = await scanRecords(file, commits[0].offset, seed, (_offset, header) => {
        if (header.type === RecordType.ENTRY) damage.intactEntriesAfter += 1;
        if (header.type === RecordType.ENTRY || header.type === RecordType.COMMIT) damage.lastKnownIndex = Math.max(damage.lastKnownIndex, header.index);
      });
      if (end.kind === "end") return;
      searchFrom = end.offset + RECORD_ALIGNMENT_BYTES;
    }
  } finally {
    await file.close();
  }
}

function newLogDamage(corruption: CorruptionDetail): LogDamage {
  return {
    segment: corruption.segment,
    offset: corruption.offset,
    reason: corruption.reason,
    firstLostIndex: Math.min(...(corruption.indexes.length > 0 ? corruption.indexes : [Number.MAX_SAFE_INTEGER])),
    lastKnownIndex: 0,
    damagedEntries: [],
    intactEntriesAfter: 0,
    setAside: [],
  };
}

/**
 * Raises the highest index the log may have held to what an intact record names: an entry
 * its own index, a COMMIT its batch's last index. A damaged record names nothing: its
 * checksum covers header and payload, so its header index may be the damage (a flipped
 * high bit names 2^51 + i, and a node told it may have held that would never be whole).
 */
function boundLoss(damage: LogDamage, record: ScannedRecord): void {
  if (record.intact && (record.type === "entry" || record.type === "commit")) damage.lastKnownIndex = Math.max(damage.lastKnownIndex, record.index);
}

/**
 * For each record of the walk in turn (file order), the index the log expects an entry at
 * its place: a damaged entry record whose header names it can be believed (countLost).
 */
function expectedEntryIndexes(listings: SegmentListing[]): (record: ScannedRecord) => number {
  let segmentId = -1;
  let next = 0;
  return (record) => {
    if (record.segmentId !== segmentId) {
      segmentId = record.segmentId;
      next = listings.find((listing) => listing.segmentId === segmentId)?.header?.firstIndex ?? 0;
    }
    const here = next;
    if (record.intact) next = nextExpectedIndex(here, record);
    return here;
  };
}

/** Where the log continues after an intact record. */
function nextExpectedIndex(expectedIndex: number, record: ScannedRecord): number {
  switch (record.type) {
    case "entry":
    case "commit":
      return record.index + 1;
    case "truncate-suffix":
      return record.index;
    case "compact":
      return Math.max(expectedIndex, record.index + 1);
    default:
      return expectedIndex;
  }
}

/** An entry record past the damage: intact, or damaged (named only when its header can be believed). */
function countLost(damage: LogDamage, record: ScannedRecord, expectedIndex: number): void {
  if (record.status === "ok") damage.intactEntriesAfter += 1;
  else if (record.intact || record.index === expectedIndex) damage.damagedEntries.push({ index: record.index, term: record.term });
}

/**
 * The kept WAL is compacted past the snapshot the open would use (the newer snapshot that
 * covered the entries in between is damaged or missing), or to its index in another term:
 * those entries are gone, and the log must restart empty at the snapshot (step 2).
 */
export function walBehindSnapshot(snapshot: { index: number; term: number }, compacted: { index: number; term: number }): boolean {
  return snapshot.index < compacted.index || (snapshot.index > 0 && snapshot.index === compacted.index && compacted.term !== snapshot.term);
}

/** What `planRepair` needs: each part of the directory as found, read-only. */
export interface RepairPlanInput {
  wal: WalAssessment;
  /** The hard state's commit index, or "lost" when the file is damaged. */
  hardState: { lost: true } | { lost: false; commit: number };
  /** The newest snapshot whose checksums verify ({0, 0}: none), and whether a newer one is damaged. */
  snapshot: { index: number; term: number; newerDamaged: boolean };
  /** An earlier repair not finished yet (the directory's REPAIRING mark). */
  marker?: RepairMarker;
}

/** What a repair-mode open would do with a directory (see the steps at the top). */
export interface RepairPlan {
  /** K: the log kept ends here. */
  keptToIndex: number;
  /** Entries K+1..L, lost and fetched again from the leader; `why` names what sets L. */
  lost?: { fromIndex: number; toIndex: number; why: string };
  /** Term and vote are unknown: relearned from the voters before this node votes again. */
  termAndVoteLost: boolean;
  /** The snapshot the node restarts from, when the newest one is damaged. */
  snapshot?: { index: number; term: number; logRestartsEmpty: boolean; compactedIndex: number; reason: string };
  log?: LogDamage;
  /** The hard state's commit, when it is ahead of the log kept. */
  commitAhead?: number;
  earlierRepair?: RepairMarker;
  /** Files set aside, relative to the data directory (a segment from a byte offset on, or whole). */
  setAside: string[];
}

/** The plan, or undefined when a repair-mode open would find nothing to repair. Pure. */
export function planRepair(input: RepairPlanInput): RepairPlan | undefined {
  const { wal, hardState, snapshot, marker } = input;
  const plan: RepairPlan = { keptToIndex: Math.max(snapshot.index, wal.kept.lastIndex), termAndVoteLost: hardState.lost, setAside: [] };
  let lostTo: { index: number; why: string } | undefined;
  const raise = (index: number, why: string) => {
    if (lostTo === undefined || index > lostTo.index) lostTo = { index, why };
  };
  if (wal.damage) {
    plan.log = wal.damage;
    raise(wal.damage.lastKnownIndex, "the highest index an intact WAL record or a segment header names");
    plan.setAside.push(...wal.setAside.map((s) => `wal/${s.segment}${s.fromOffset === undefined ? "" : ` from byte offset ${s.fromOffset}`}`));
  }
  if (hardState.lost) plan.setAside.push("hardstate/hardstate");
  const compacted = { index: wal.kept.compactedIndex, term: wal.kept.compactedTerm };
  if (walBehindSnapshot(snapshot, compacted)) {
    plan.keptToIndex = snapshot.index;
    raise(wal.kept.lastIndex, "the WAL's last index, set aside whole");
    plan.snapshot = { index: snapshot.index, term: snapshot.term, logRestartsEmpty: true, compactedIndex: compacted.index, reason: `no valid snapshot at ${compacted.index}` };
    plan.setAside.push("wal/ (every segment)");
  } else if (snapshot.newerDamaged) {
    plan.snapshot = { index: snapshot.index, term: snapshot.term, logRestartsEmpty: false, compactedIndex: compacted.index, reason: "the newest snapshot is damaged; the log still holds what it covered" };
  }
  if (!hardState.lost && hardState.commit > plan.keptToIndex) {
    plan.commitAhead = hardState.commit;
    raise(hardState.commit, "the hard state's commit index");
  }
  if (marker) {
    plan.earlierRepair = marker;
    plan.termAndVoteLost ||= marker.hardStateLost;
    if (marker.logLost) raise(marker.lostToIndex, "the REPAIRING mark of an earlier start");
  }
  if (lostTo !== undefined) plan.lost = { fromIndex: plan.keptToIndex + 1, toIndex: Math.max(lostTo.index, plan.keptToIndex), why: lostTo.why };
  const found = plan.lost || plan.termAndVoteLost || plan.snapshot || plan.earlierRepair;
  return found ? plan : undefined;
}
