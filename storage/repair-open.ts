/**
 * The parts of `openRaftStorage` that differ when the caller repairs damage instead of
 * stopping on it (`onCorruption: "repair"`): each part is opened, and if it is damaged,
 * the damage is described and set aside (salvage.ts) and the part opened again. With
 * "stop" (the storage's default) every damage is an error, as before.
 */
import { join } from "node:path";
import { walBehindSnapshot } from "./damage-assessment.js";
import { RaftwalError, WalErrorCode } from "./errors.js";
import type { FileSystem } from "./fs/file-system.js";
import { HARD_STATE_FILE_NAME, HardStateFile } from "./hard-state.js";
import { writeRepairMarker } from "./repair-marker.js";
import { salvageWal, setFileAside, setWalAside, type StorageDamageReport } from "./salvage.js";
import { Wal, type WalOptions } from "./wal/index.js";
import { WalCorruptionError } from "./wal/errors.js";

/** Damaged regions one open sets aside at most before giving up (each pass removes one). */
const SALVAGE_PASSES_MAX = 8;

/** Where open writes the repair mark: the node's data directory. */
export interface RepairContext {
  report: StorageDamageReport;
  fs: FileSystem;
  dataDirectory: string;
}

export async function openHardState(fs: FileSystem, directory: string, repair: RepairContext | undefined): Promise<HardStateFile> {
  try {
    return await HardStateFile.open(fs, directory);
  } catch (error) {
    if (repair === undefined || (error as RaftwalError).code !== WalErrorCode.HARD_STATE_CORRUPT) throw error;
    const report = repair.report;
    await writeRepairMarker(fs, repair.dataDirectory, { logLost: false, lostToIndex: 0, hardStateLost: true });
    const setAside = await setFileAside(fs, join(directory, HARD_STATE_FILE_NAME));
    report.hardState = { reason: (error as Error).message, setAside };
    return HardStateFile.open(fs, directory);
  }
}

export async function openWal(directory: string, options: WalOptions, repair: RepairContext | undefined): Promise<Wal> {
  for (let pass = 0; ; pass++) {
    try {
      return await Wal.open(directory, options);
    } catch (error) {
      if (repair === undefined || !(error instanceof WalCorruptionError) || pass >= SALVAGE_PASSES_MAX) throw error;
      const report = repair.report;
      const damage = await salvageWal(directory, options.fs!, error, (found) =>
        writeRepairMarker(repair.fs, repair.dataDirectory, { logLost: true, lostToIndex: found.lastKnownIndex, hardStateLost: false }).then(() => undefined),
      );
      // The first damage found is the one that bounds the intact prefix; later passes only add what they set aside.
      if (report.log === undefined) report.log = damage;
      else report.log.setAside.push(...damage.setAside);
    }
  }
}

/**
 * The WAL compacted past the newest valid snapshot (a damaged snapshot), or to another
 * term: the entries in between are gone, so the whole WAL is set aside and reopened empty
 * (the caller compacts it to the snapshot). Returns the WAL to use.
 */
export async function settleWalBehindSnapshot(
  wal: Wal,
  directory: string,
  options: WalOptions,
  snapshot: { index: number; term: number },
  repair: RepairContext,
): Promise<Wal> {
  const compactedIndex = wal.compactedIndex();
  if (!walBehindSnapshot(snapshot, { index: compactedIndex, term: wal.compactedTerm() })) return wal;
  const report = repair.report;
  const lastIndex = wal.lastIndex();
  await wal.close();
  await writeRepairMarker(repair.fs, repair.dataDirectory, { logLost: true, lostToIndex: lastIndex, hardStateLost: false });
  const setAside = await setWalAside(directory, options.fs!);
  report.snapshot = {
    compactedIndex,
    newestValidIndex: snapshot.index,
    reason: `no valid snapshot at ${compactedIndex}: the newest valid one is at ${snapshot.index}`,
    setAside,
  };
  report.log ??= {
    segment: "",
    offset: 0,
    reason: "the log was compacted past the newest valid snapshot",
    firstLostIndex: snapshot.index + 1,
    lastKnownIndex: lastIndex,
    damagedEntries: [],
    intactEntriesAfter: 0,
    setAside: [],
  };
  report.log.lastKnownIndex = Math.max(report.log.lastKnownIndex, lastIndex);
  return Wal.open(directory, options);
}

/** Whether a report holds any damage. */
export function damaged(report: StorageDamageReport): boolean {
  return report.log !== undefined || report.hardState !== undefined || report.snapshot !== undefined;
}

export function corruptError(message: string): RaftwalError {
  return new RaftwalError(WalErrorCode.CORRUPT, message);
}
