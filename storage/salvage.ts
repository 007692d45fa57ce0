/**
 * Salvage of a damaged data directory, for a node that repairs itself from its peers
 * (`openRaftStorage(dir, { onCorruption: "repair" })`). It tells exactly what is lost and
 * sets every damaged byte aside, so that nothing damaged is ever read as valid:
 *
 *   - WAL: the log keeps its intact prefix, up to the last whole batch before the first
 *     damaged record. From that record on, the segment's bytes are copied beside it
 *     (`<segment>.damaged-<offset>`) and zeroed, and every later segment is renamed
 *     `<segment>.damaged`. The report names the first lost index, the damaged entries
 *     whose headers still name them (index and term), the intact records found after
 *     the damage (discarded too: the log must stay contiguous; the leader resends them),
 *     and the highest index any record names: this node may have acknowledged up to it.
 *   - Hard state: the damaged file is renamed aside; term and vote are unknown.
 *   - Snapshots: a damaged snapshot is skipped (the snapshot store already does); when
 *     the WAL was compacted past the newest valid one, the entries between are lost: the
 *     WAL is set aside whole and the log restarts empty at that snapshot.
 *
 * What is lost is found read-only first (damage-assessment.ts, which `raftwal wal verify`
 * shows too); only then is anything moved. Everything set aside is durable before the
 * storage opens (files fsynced, directory fsynced), so a crash during salvage salvages again. Storage knows records, not Raft: it
 * reports indexes and terms; the node runtime hands the summary to the core.
 */
import { posix } from "node:path";
import type { FileSystem } from "./fs/file-system.js";
import { assessWal, type LogDamage } from "./damage-assessment.js";
import { listSegments } from "./wal/inspect.js";
import { cutTornTail } from "./wal/recovery.js";
import type { WalCorruptionError } from "./wal/errors.js";

/** What a damaged WAL lost: described read-only by damage-assessment.ts. */
export type { LogDamage };

/** Everything damaged that a repair-mode open found and set aside. */
export interface StorageDamageReport {
  log?: LogDamage;
  /** "term and vote unknown": the hard-state file was damaged and set aside. */
  hardState?: { reason: string; setAside: string };
  /** "no valid snapshot at N": the WAL was compacted to N, past the newest valid snapshot. */
  snapshot?: { compactedIndex: number; newestValidIndex: number; reason: string; setAside: string[] };
}

/**
 * Describes the WAL's damage (the first corruption is `error`: where recovery stopped),
 * then sets it aside so that the WAL opens with its intact prefix.
 */
export async function salvageWal(
  dir: string,
  fs: FileSystem,
  error: WalCorruptionError,
  beforeSetAside: (damage: LogDamage) => Promise<void>,
): Promise<LogDamage> {
  const { damage } = await assessWal(dir, fs, error);
  await beforeSetAside(damage);
  const listings = await listSegments(dir, fs);
  const damagedAt = listings.findIndex((listing) => listing.name === error.segment);
  const damaged = listings[damagedAt];
  if (damaged !== undefined) {
    const file = await fs.open(damaged.path);
    try {
      const end = await file.size();
      if (error.offset < end) {
        const saved = await cutTornTail(fs, dir, file, damaged, error.offset, end);
        const aside = `${damaged.path}.damaged-${error.offset}`;
        await fs.rename(saved, aside);
        damage.setAside.push(aside);
      }
    } finally {
      await file.close();
    }
  }
  for (const later of listings.slice(damagedAt + 1)) {
    await fs.rename(later.path, `${later.path}.damaged`);
    damage.setAside.push(`${later.path}.damaged`);
  }
  await fs.syncDirectory(dir);
  return damage;
}

/** Sets every WAL segment aside (the log restarts empty): returns where they went. */
export async function setWalAside(dir: string, fs: FileSystem): Promise<string[]> {
  const aside: string[] = [];
  // An earlier repair's set-aside files are kept (a new name each), not overwritten.
  for (const listing of await listSegments(dir, fs)) aside.push(await setFileAside(fs, listing.path));
  return aside;
}

/** Renames a damaged file aside (durably); returns its new path. */
export async function setFileAside(fs: FileSystem, path: string): Promise<string> {
  let aside = `${path}.damaged`;
  for (let attempt = 1; await fs.exists(aside); attempt++) aside = `${path}.damaged.${attempt}`;
  await fs.rename(path, aside);
  await fs.syncDirectory(posix.dirname(path));
  return aside;
}
