/**
 * Disk damage: one bit flipped, directly with node:fs, in one of a node's files:
 *   - a WAL entry record that is not in the last batch: in a sealed segment (the middle of
 *     the log) when there is one, else an earlier batch of the active segment. A
 *     checksum-valid COMMIT follows it, so recovery must call it damage, never a torn tail
 *     it may cut (storage/wal/FORMAT.md, recovery step 6). Any byte of the record, header
 *     (type, length, index, term, checksum) or payload: a damaged header's index must not
 *     be taken for an index the log held (src/raft/REPAIR.md, "How lostToIndex is bounded");
 *   - the COMMIT record of the active segment's last batch, with a flip recovery can tell
 *     from a cut (storage/wal/commit-damage.ts): that batch may have been acknowledged, so
 *     it too is damage to repair, never a torn tail to cut;
 *   - the hard-state file;
 *   - the newest valid snapshot (the WAL is compacted to it, so its loss costs the log
 *     after the next older snapshot; the only one costs the whole log, and with it every
 *     configuration naming the node: it restarts from its MEMBER file).
 * The node is stopped, except for a flip in a sealed segment of a running node
 * (`sealedOnly`): a segment it has written and will read again to serve a lagging
 * follower. Positions come from the caller's seeded random function.
 */
import { readFileSync, openSync, readSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { readHardState } from "../../storage/hard-state.js";
import { listSnapshotFiles, type SnapshotListing } from "../../storage/snapshot-store.js";
import { commitDamagedAfterWrite } from "../../storage/wal/commit-damage.js";
import { COMMIT_RECORD_BYTES } from "../../storage/wal/format.js";
import { listSegments, scanWal } from "../../storage/wal/inspect.js";

export type DamageTarget = "wal" | "hardstate" | "snapshot";

/** A WAL record's header (storage/wal/FORMAT.md): type, length, index, term, checksum. */
const RECORD_HEADER_BYTES = 32;

/** What a flip damaged, as the report counts it. */
export type DamageKind = "WAL sealed segment" | "WAL active segment (earlier batch)" | "WAL last batch's commit" | "hard state" | "newest snapshot" | "only snapshot";

/** Share of WAL flips (node stopped) that go to the last batch's COMMIT record. */
const LAST_COMMIT_SHARE = 0.25;

export interface Damage {
  target: DamageTarget;
  kind: DamageKind;
  path: string;
  /** The byte flipped, from the start of the file. */
  byteOffset: number;
  bit: number;
  /** WAL: the damaged record's offset in its segment and the entry index it holds. */
  recordOffset?: number;
  entryIndex?: number;
  describe: string;
}

export interface DamageChoice {
  /** The node whose data directory it is. */
  nodeId: number;
  /** WAL: only a sealed segment, only entries above this index (what a lagging follower needs). */
  sealedOnly?: boolean;
  indexAbove?: number;
}

/** The durable term and vote of a stopped node (what it must never come back below). */
export async function durableHardState(dataDir: string): Promise<{ term: number; vote: number; commit: number }> {
  return (await readHardState(new NodeFileSystem(), join(dataDir, "hardstate"))).hardState;
}

/**
 * Flips one bit of `target` in `dataDir`; undefined when there is nothing of that kind to
 * damage. `fs` reads the WAL (a test's seam; the flip itself is node:fs).
 */
export async function damage(dataDir: string, target: DamageTarget, random: () => number, choice: DamageChoice, fs: FileSystem = new NodeFileSystem()): Promise<Damage | undefined> {
  switch (target) {
    case "wal":
      return damageWalUnlessGone(dataDir, random, choice, fs);
    case "hardstate": {
      const path = join(dataDir, "hardstate", "hardstate");
      let size: number;
      try {
        size = readFileSync(path).length;
      } catch {
        return undefined;
      }
      return flip(path, Math.floor(random() * size), Math.floor(random() * 8), { target, kind: "hard state", describe: "hard-state file" });
    }
    case "snapshot":
      return damageSnapshot(dataDir, random, choice);
  }
}

async function damageSnapshot(dataDir: string, random: () => number, choice: DamageChoice): Promise<Damage | undefined> {
  const directory = join(dataDir, "snap");
  let valid;
  try {
    valid = (await listSnapshotFiles(new NodeFileSystem(), directory, { verifyPayload: true })).filter((listing) => listing.status === "valid");
  } catch {
    return undefined;
  }
  if (valid.length === 0) return undefined;
  const newest = valid[0];
  const path = join(directory, newest.name);
  const size = readFileSync(path).length;
  const kind: DamageKind = valid.length === 1 ? "only snapshot" : "newest snapshot";
  return flip(path, Math.floor(random() * size), Math.floor(random() * 8), { target: "snapshot", kind, describe: `${kind} ${newest.name}` });
}

/** The newest snapshot whose metadata reads (undefined: none): entries at or below its index are compacted away. */
async function newestSnapshot(dataDir: string): Promise<SnapshotListing | undefined> {
  try {
    const listings = await listSnapshotFiles(new NodeFileSystem(), join(dataDir, "snap"), { verifyPayload: false });
    return listings.find((listing) => listing.status !== "corrupt");
  } catch {
    return undefined;
  }
}

interface EntryRecord {
  segmentId: number;
  segment: string;
  offset: number;
  index: number;
  payloadBytes: number;
}

/**
 * A running node (disk-live) may recycle or delete a segment between its listing and the
 * flip: then nothing was damaged (the flip opens the file first), and the caller may try again.
 */
async function damageWalUnlessGone(dataDir: string, random: () => number, choice: DamageChoice, fs: FileSystem): Promise<Damage | undefined> {
  try {
    return await damageWal(dataDir, random, choice, fs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

async function damageWal(dataDir: string, random: () => number, choice: DamageChoice, fs: FileSystem): Promise<Damage | undefined> {
  const walDirectory = join(dataDir, "wal");
  let listings;
  try {
    listings = await listSegments(walDirectory, fs);
  } catch {
    return undefined;
  }
  const active = listings.find((listing) => listing.state === "active")?.segmentId;
  const entries: EntryRecord[] = [];
  const activeCommits: number[] = [];
  for await (const record of scanWal(walDirectory, fs)) {
    if (record.status !== "ok") continue;
    if (record.type === "entry") entries.push({ segmentId: record.segmentId, segment: record.segment, offset: record.offset, index: record.index, payloadBytes: record.payload.length });
    if (record.type === "commit" && record.segmentId === active) activeCommits.push(record.offset);
  }
  const snapshot = await newestSnapshot(dataDir);
  // Entries of the live log (above the snapshot) first: damage there costs the node entries.
  const compacted = Math.max(snapshot?.index ?? 0, choice.indexAbove ?? 0);
  const live = entries.filter((entry) => entry.index > compacted);
  const sealed = (from: EntryRecord[]) => from.filter((entry) => entry.segmentId !== active);
  // In the active segment only records followed by at least one more complete batch count.
  const lastBatchFrom = activeCommits.length >= 2 ? activeCommits[activeCommits.length - 2] : -1;
  const olderBatches = live.filter((entry) => entry.segmentId === active && entry.offset < lastBatchFrom);
  const activeListing = listings.find((listing) => listing.segmentId === active);
  if (!choice.sealedOnly && activeListing?.header && activeCommits.length > 0 && random() < LAST_COMMIT_SHARE) {
    return damageLastCommit(activeListing.path, activeCommits[activeCommits.length - 1], activeListing.header.recycled, random);
  }
  const candidates = choice.sealedOnly ? sealed(live) : [sealed(live), olderBatches, sealed(entries)].find((list) => list.length > 0) ?? [];
  if (candidates.length === 0) return undefined;
  const record = candidates[Math.floor(random() * candidates.length)];
  const path = listings.find((listing) => listing.segmentId === record.segmentId)!.path;
  // Header or payload: the record's checksum covers both.
  const byteOffset = record.offset + Math.floor(random() * (RECORD_HEADER_BYTES + record.payloadBytes));
  const kind: DamageKind = record.segmentId === active ? "WAL active segment (earlier batch)" : "WAL sealed segment";
  return flip(path, byteOffset, Math.floor(random() * 8), {
    target: "wal",
    kind,
    recordOffset: record.offset,
    entryIndex: record.index,
    describe: `${kind} ${record.segment}, record at offset ${record.offset} (entry ${record.index})`,
  });
}

/**
 * Flips a bit of the COMMIT record at `offset`, one that recovery can tell from a cut (a
 * flip that leaves the record looking cut into zeros would be taken for a torn tail, as a
 * real crash's could be: commit-damage.ts).
 */
function damageLastCommit(path: string, offset: number, recycled: boolean, random: () => number): Damage | undefined {
  const original = Buffer.alloc(COMMIT_RECORD_BYTES);
  const fd = openSync(path, "r");
  try {
    if (readSync(fd, original, 0, COMMIT_RECORD_BYTES, offset) !== COMMIT_RECORD_BYTES) return undefined;
  } finally {
    closeSync(fd);
  }
  for (let attempt = 0; attempt < 16; attempt++) {
    const byte = Math.floor(random() * COMMIT_RECORD_BYTES);
    const bit = Math.floor(random() * 8);
    const flipped = Buffer.from(original);
    flipped[byte] ^= 1 << bit;
    if (!commitDamagedAfterWrite(flipped, [original], { recycled, fileOffset: offset })) continue;
    const kind: DamageKind = "WAL last batch's commit";
    return flip(path, offset + byte, bit, { target: "wal", kind, recordOffset: offset, describe: `${kind}, record at offset ${offset}` });
  }
  return undefined;
}

function flip(path: string, byteOffset: number, bit: number, rest: Omit<Damage, "path" | "byteOffset" | "bit">): Damage {
  flipBit(path, byteOffset, bit);
  return { ...rest, path, byteOffset, bit, describe: `${rest.describe}: bit ${bit} of byte ${byteOffset}` };
}

/** Flips bit `bit` of the byte at `byteOffset` of `path`, in place. */
export function flipBit(path: string, byteOffset: number, bit: number): void {
  const fd = openSync(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    if (readSync(fd, byte, 0, 1, byteOffset) !== 1) throw new Error(`${path} has no byte ${byteOffset}`);
    byte[0] ^= 1 << bit;
    writeSync(fd, byte, 0, 1, byteOffset);
  } finally {
    closeSync(fd);
  }
}
