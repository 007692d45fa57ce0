/**
 * Disk damage between a node's kill and its restart: one bit flipped, directly with
 * node:fs, in one of a stopped node's files:
 *   - a WAL record that is not in the last batch (in a sealed segment when there is one):
 *     a checksum-valid COMMIT follows it, so recovery must call it corruption, never a
 *     torn tail it may cut (storage/wal/FORMAT.md, recovery step 6);
 *   - the hard-state file;
 *   - the newest snapshot file.
 * The position is chosen by the caller's seeded random function. `restore` flips the bit
 * back (what an operator restoring the file from a backup would do).
 */
import { readdirSync, readFileSync, openSync, readSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { readHardState } from "../../storage/hard-state.js";
import { listSegments, scanWal } from "../../storage/wal/inspect.js";

export type DamageTarget = "wal" | "hardstate" | "snapshot";

export interface Damage {
  target: DamageTarget;
  path: string;
  /** The byte flipped, from the start of the file. */
  byteOffset: number;
  bit: number;
  /** WAL: the damaged record's offset in its segment and the entry index it holds. */
  recordOffset?: number;
  entryIndex?: number;
  /** The file's bytes after the damage (to prove the node did not modify it). */
  damagedImage: Buffer;
  describe: string;
}

/** The durable term and vote of a stopped node (what it must never come back below). */
export async function durableHardState(dataDir: string): Promise<{ term: number; vote: number; commit: number }> {
  return (await readHardState(new NodeFileSystem(), join(dataDir, "hardstate"))).hardState;
}

/** Flips one bit of `target` in the stopped node's `dataDir`; undefined when there is nothing of that kind yet. */
export async function damage(dataDir: string, target: DamageTarget, random: () => number): Promise<Damage | undefined> {
  switch (target) {
    case "wal":
      return damageWal(join(dataDir, "wal"), random);
    case "hardstate": {
      const path = join(dataDir, "hardstate", "hardstate");
      let size: number;
      try {
        size = readFileSync(path).length;
      } catch {
        return undefined;
      }
      return flip(path, Math.floor(random() * size), Math.floor(random() * 8), { target, describe: "hard-state file" });
    }
    case "snapshot": {
      const directory = join(dataDir, "snap");
      let names: string[];
      try {
        names = readdirSync(directory).filter((name) => /^snapshot-\d+-\d+\.snap$/.test(name));
      } catch {
        return undefined;
      }
      if (names.length === 0) return undefined;
      const newest = names.sort((a, b) => snapshotIndex(b) - snapshotIndex(a))[0];
      const path = join(directory, newest);
      const size = readFileSync(path).length;
      if (size === 0) return undefined;
      return flip(path, Math.floor(random() * size), Math.floor(random() * 8), { target, describe: `newest snapshot ${newest}` });
    }
  }
}

function snapshotIndex(name: string): number {
  return Number(/^snapshot-(\d+)-/.exec(name)?.[1] ?? 0);
}

async function damageWal(walDirectory: string, random: () => number): Promise<Damage | undefined> {
  const fs = new NodeFileSystem();
  let listings;
  try {
    listings = await listSegments(walDirectory, fs);
  } catch {
    return undefined;
  }
  const active = listings.find((listing) => listing.state === "active")?.segmentId;
  const records: Array<{ segmentId: number; segment: string; offset: number; type: string; index: number; sizeBytes: number; payloadBytes: number }> = [];
  for await (const record of scanWal(walDirectory, fs)) {
    if (record.status !== "ok") continue;
    records.push({ segmentId: record.segmentId, segment: record.segment, offset: record.offset, type: record.type, index: record.index, sizeBytes: record.sizeBytes, payloadBytes: record.payload.length });
  }
  // In the active segment only records followed by at least one more complete batch count.
  const activeCommits = records.filter((r) => r.segmentId === active && r.type === "commit").map((r) => r.offset);
  const lastBatchFrom = activeCommits.length >= 2 ? activeCommits[activeCommits.length - 2] : -1;
  const entries = records.filter((r) => r.type === "entry");
  const sealed = entries.filter((r) => r.segmentId !== active);
  const olderBatches = entries.filter((r) => r.segmentId === active && r.offset < lastBatchFrom);
  const candidates = sealed.length > 0 ? sealed : olderBatches;
  if (candidates.length === 0) return undefined;
  const record = candidates[Math.floor(random() * candidates.length)];
  const path = listings.find((listing) => listing.segmentId === record.segmentId)!.path;
  const byteOffset = record.offset + Math.floor(random() * (32 + record.payloadBytes));
  return flip(path, byteOffset, Math.floor(random() * 8), {
    target: "wal",
    recordOffset: record.offset,
    entryIndex: record.index,
    describe: `WAL ${record.segment} (${record.segmentId === active ? "active segment, an earlier batch" : "sealed segment"}) record at offset ${record.offset}, entry ${record.index}`,
  });
}

function flip(path: string, byteOffset: number, bit: number, rest: Omit<Damage, "path" | "byteOffset" | "bit" | "damagedImage">): Damage {
  flipBit(path, byteOffset, bit);
  return { ...rest, path, byteOffset, bit, damagedImage: readFileSync(path), describe: `${rest.describe}: bit ${bit} of byte ${byteOffset}` };
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

/** Undoes the damage (the bit flipped back). */
export function restore(damageDone: Damage): void {
  flipBit(damageDone.path, damageDone.byteOffset, damageDone.bit);
}

/** Whether the damaged file still holds exactly the damaged image (the node modified nothing). */
export function unchanged(damageDone: Damage): boolean {
  try {
    return readFileSync(damageDone.path).equals(damageDone.damagedImage);
  } catch {
    return false;
  }
}
