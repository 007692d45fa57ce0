/**
 * Where the disk nemesis flips its bit (src/torture/disk-damage.ts), on a real data
 * directory: a sealed segment's entry record, in its header or its payload, above a given
 * index when asked; nothing when no sealed segment holds such an entry; the only snapshot too (the node loses
 * every configuration naming it).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { openRaftStorage } from "../../storage/raft-storage.js";
import { scanWal } from "../../storage/wal/index.js";
import { bootstrapConfig } from "../../src/node/membership.js";
import { seededRandom } from "../../src/rng.js";
import { damage, flipBit } from "../../src/torture/disk-damage.js";
import { range } from "../storage/wal-helpers.js";

const RECORD_HEADER_BYTES = 32;
const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

/**
 * A data directory whose WAL holds entries 1..`last` of 200 bytes in 64 KiB segments
 * (several sealed) and a snapshot at 100 naming nodes 1 to 3 as members.
 */
async function dataDirWithLog(last: number): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), "raftwal-damage-"));
  directories.push(dataDir);
  const storage = await openRaftStorage(dataDir, { wal: { segmentSizeBytes: 64 * 1024 } });
  for (let i = 1; i <= last; i += 50) await storage.append(range(i, Math.min(last, i + 49), 1, 200));
  await storage.saveHardState({ term: 1, vote: 0, commit: last });
  const members = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: 7000 + id }));
  await storage.createSnapshot({ index: 100, config: bootstrapConfig(members) }, [new Uint8Array(64)]);
  await storage.close();
  return dataDir;
}

describe("disk damage", () => {
  it("flips a bit of an entry record in a sealed segment, above the index asked for; the WAL sees it", async () => {
    const dataDir = await dataDirWithLog(1000);
    const payloadBytes = await payloadSizes(dataDir);
    for (let seed = 1; seed <= 20; seed++) {
      const damaged = (await damage(dataDir, "wal", seededRandom(seed), { nodeId: 2, sealedOnly: true, indexAbove: 300 }))!;
      expect(damaged.kind).toBe("WAL sealed segment");
      expect(damaged.entryIndex).toBeGreaterThan(300);
      const intoRecord = damaged.byteOffset - damaged.recordOffset!;
      expect(intoRecord).toBeGreaterThanOrEqual(0);
      expect(intoRecord).toBeLessThan(RECORD_HEADER_BYTES + payloadBytes.get(`${damaged.path}@${damaged.recordOffset}`)!);
      expect(await statusAt(dataDir, damaged.path, damaged.recordOffset!)).toBe("corrupt");
      flipBit(damaged.path, damaged.byteOffset, damaged.bit);
      expect(await statusAt(dataDir, damaged.path, damaged.recordOffset!)).toBe("ok");
    }
  });

  it("finds nothing when no sealed segment holds an entry above the index", async () => {
    const dataDir = await dataDirWithLog(1000);
    expect(await damage(dataDir, "wal", seededRandom(1), { nodeId: 2, sealedOnly: true, indexAbove: 1000 })).toBeUndefined();
  });

  it("also damages what costs the node every configuration naming it (its MEMBER file keeps its addresses)", async () => {
    const dataDir = await dataDirWithLog(1000);
    // Node 7 is in no snapshot: its log could hold the only configuration naming it.
    expect((await damage(dataDir, "wal", seededRandom(1), { nodeId: 7 }))?.target).toBe("wal");
    // The only snapshot: no older one names node 2.
    expect((await damage(dataDir, "snapshot", seededRandom(1), { nodeId: 2 }))?.kind).toBe("only snapshot");
  });

  it("reaches a record's header as well as its payload (known bug 2, a damaged header index, is fixed)", async () => {
    const dataDir = await dataDirWithLog(1000);
    const offsets = new Set<boolean>();
    for (let seed = 1; seed <= 40; seed++) {
      const damaged = (await damage(dataDir, "wal", seededRandom(seed), { nodeId: 2, sealedOnly: true }))!;
      offsets.add(damaged.byteOffset - damaged.recordOffset! < RECORD_HEADER_BYTES);
      flipBit(damaged.path, damaged.byteOffset, damaged.bit);
    }
    expect(offsets).toEqual(new Set([true, false]));
  });

  it("damages nothing, and does not fail, when a running node's segment goes away while it reads the WAL", async () => {
    const dataDir = await dataDirWithLog(1000);
    // As if the node recycled every segment once it was listed: each later open finds no file.
    class VanishingSegments extends NodeFileSystem {
      private readonly listed = new Set<string>();
      override async open(path: string, options?: Parameters<NodeFileSystem["open"]>[1]) {
        if (path.endsWith(".wal") && this.listed.has(path)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
        this.listed.add(path);
        return super.open(path, options);
      }
    }
    const before = await payloadSizes(dataDir);
    expect(await damage(dataDir, "wal", seededRandom(1), { nodeId: 2, sealedOnly: true }, new VanishingSegments())).toBeUndefined();
    expect(await payloadSizes(dataDir)).toEqual(before);
  });
});

/** Each entry record's payload size, by "<segment path>@<offset>". */
async function payloadSizes(dataDir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for await (const record of scanWal(join(dataDir, "wal"), new NodeFileSystem())) sizes.set(`${join(dataDir, "wal", record.segment)}@${record.offset}`, record.payload.length);
  return sizes;
}

async function statusAt(dataDir: string, path: string, offset: number): Promise<string | undefined> {
  for await (const record of scanWal(join(dataDir, "wal"), new NodeFileSystem())) {
    if (path.endsWith(record.segment) && record.offset === offset) return record.status;
  }
  return undefined;
}
