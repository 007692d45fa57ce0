import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { SnapshotStore, listSnapshotFiles } from "../../storage/snapshot-store.js";
import { SNAPSHOT_HEADER_BYTES, snapshotFileName } from "../../storage/snapshot/format.js";
import { CrashingFileSystem, SimulatedCrash } from "./raft-storage-crashing-fs.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

const DIR = "/node/snap";
const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes: payload byte i of snapshot `seed`. */
function payload(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

async function writeSnapshot(store: SnapshotStore, index: number, term: number, data: Uint8Array, chunkBytes = 4096) {
  const writer = await store.createWriter({ index, term, config: clusterConfigOf([1, 2, 3]) });
  for (let offset = 0; offset < data.length; offset += chunkBytes) await writer.write(data.subarray(offset, offset + chunkBytes));
  return writer.finish();
}

async function readAll(store: SnapshotStore, chunkBytes?: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of store.openReader(chunkBytes)) parts.push(chunk);
  return Buffer.concat(parts);
}

describe("SnapshotStore", () => {
  it("is empty on a new directory", async () => {
    const store = await SnapshotStore.open(DIR, { fs: new MemoryFileSystem() });
    expect(store.newestMeta()).toBeUndefined();
    expect(store.recovery).toMatchObject({ skippedCorrupt: [], removedTemporaryFiles: [] });
    expect(() => store.readChunk(0, 10)).toThrow(expect.objectContaining({ code: "WAL_ERR_UNAVAILABLE" }));
  });

  it("writes a multi-MB snapshot streamed in odd-sized chunks and reads it back verified, streamed and by chunk", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const data = payload(1, 5 * MiB + 123);
    const meta = await writeSnapshot(store, 1000, 7, data, 77_777);
    expect(meta).toEqual({ index: 1000, term: 7, config: clusterConfigOf([1, 2, 3]), sizeBytes: data.length });
    expect(store.newestMeta()).toEqual(meta);
    expect(Buffer.compare(await readAll(store, 300_000), data)).toBe(0);
    const pieces: Uint8Array[] = [];
    for (let offset = 0; offset < data.length; offset += 1_000_000) pieces.push(store.readChunk(offset, 1_000_000));
    expect(Buffer.compare(Buffer.concat(pieces), data)).toBe(0);
    expect(store.readChunk(data.length, 10).length).toBe(0);
    expect(() => store.readChunk(data.length + 1, 10)).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));

    // Durable: a crash right after finish() keeps it, and reopening verifies it.
    fs.crash();
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(reopened.newestMeta()).toEqual(meta);
    expect(Buffer.compare(await readAll(reopened), data)).toBe(0);
  });

  it("the streamed reader verifies the checksum: damage after open fails the read with WAL_ERR_SNAPSHOT_CORRUPT", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    await writeSnapshot(store, 3, 1, payload(9, 3 * MiB));
    fs.flipBit(`${DIR}/${snapshotFileName(3, 1)}`, SNAPSHOT_HEADER_BYTES + 2 * MiB + 17, 5);
    await expect(readAll(store)).rejects.toMatchObject({ code: "WAL_ERR_SNAPSHOT_CORRUPT", message: expect.stringMatching(/payload checksum/) });
  });

  it("a zero-byte snapshot is valid", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    await writeSnapshot(store, 5, 1, new Uint8Array(0));
    fs.crash();
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(reopened.newestMeta()).toEqual({ index: 5, term: 1, config: clusterConfigOf([1, 2, 3]), sizeBytes: 0 });
    expect((await readAll(reopened)).length).toBe(0);
  });

  it("a crash at any step before the directory sync leaves no visible snapshot (or the new one, once durable)", async () => {
    const data = payload(2, 3 * MiB);
    let crashed = true;
    for (let crashAfter = 1; crashed; crashAfter++) {
      const memory = new MemoryFileSystem();
      const fs = new CrashingFileSystem(memory, crashAfter, { keepUnsyncedBytes: (_p, unsynced) => Math.floor(unsynced / 2) });
      crashed = false;
      let acknowledged = false;
      try {
        const store = await SnapshotStore.open(DIR, { fs });
        await writeSnapshot(store, 10, 2, data, MiB / 2);
        acknowledged = true;
      } catch (error) {
        expect((error as Error).cause ?? error).toBeInstanceOf(SimulatedCrash);
        crashed = true;
      }
      if (!crashed) memory.crash();
      const store = await SnapshotStore.open(DIR, { fs: memory });
      expect(store.recovery.skippedCorrupt).toEqual([]);
      const names = (await memory.list(DIR)).filter((name) => !name.endsWith(".tmp"));
      if (acknowledged) {
        expect(store.newestMeta()?.index).toBe(10);
      } else if (store.newestMeta()) {
        // Only possible once the rename reached the disk, i.e. the complete file.
        expect(Buffer.compare(await readAll(store), data)).toBe(0);
      } else {
        expect(names).toEqual([]);
      }
      expect(await memory.list(DIR)).toEqual(names); // temporary files were cleaned up
    }
  });

  it("a corrupt newest snapshot is skipped in favour of the older valid one and reported", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const older = payload(3, 200_000);
    await writeSnapshot(store, 100, 3, older);
    await writeSnapshot(store, 200, 4, payload(4, 200_000));
    const newestPath = `${DIR}/${snapshotFileName(200, 4)}`;
    for (const position of [0, 5, 29, SNAPSHOT_HEADER_BYTES + 150_000, SNAPSHOT_HEADER_BYTES + 200_000 + 3]) {
      fs.flipBit(newestPath, position, 3);
      const reopened = await SnapshotStore.open(DIR, { fs });
      expect(reopened.newestMeta()).toMatchObject({ index: 100, term: 3 });
      expect(reopened.recovery.skippedCorrupt).toEqual([{ name: snapshotFileName(200, 4), problem: expect.stringContaining("snapshot") }]);
      expect(reopened.recovery.newest?.name).toBe(snapshotFileName(100, 3));
      expect(Buffer.compare(await readAll(reopened), older)).toBe(0);
      expect(await fs.exists(newestPath)).toBe(true); // left for inspection, not deleted
      await reopened.close();
      fs.flipBit(newestPath, position, 3);
    }
    fs.truncateFile(newestPath, 1000);
    expect((await SnapshotStore.open(DIR, { fs })).newestMeta()?.index).toBe(100);
    const listing = await listSnapshotFiles(fs, DIR, { verifyPayload: true });
    expect(listing.map((s) => [s.index, s.status])).toEqual([
      [200, "corrupt"],
      [100, "valid"],
    ]);
  });

  it("every snapshot corrupt: no snapshot, each one reported", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    await writeSnapshot(store, 1, 1, payload(5, 100));
    fs.flipBit(`${DIR}/${snapshotFileName(1, 1)}`, SNAPSHOT_HEADER_BYTES + 50);
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(reopened.newestMeta()).toBeUndefined();
    expect(reopened.recovery.skippedCorrupt).toHaveLength(1);
    expect(reopened.recovery.skippedCorrupt[0].problem).toMatch(/payload checksum/);
  });

  it("keeps the newest N snapshots (default 3) and deletes older ones durably", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    for (let i = 1; i <= 6; i++) await writeSnapshot(store, i * 10, 1, payload(i, 1000));
    fs.crash();
    expect(await fs.list(DIR)).toEqual([30, 40, 50, 60].slice(1).map((i) => snapshotFileName(i, 1)));
    const two = await SnapshotStore.open("/other", { fs, retainCount: 1 });
    await writeSnapshot(two, 1, 1, payload(1, 10));
    await writeSnapshot(two, 2, 1, payload(2, 10));
    expect(await fs.list("/other")).toEqual([snapshotFileName(2, 1)]);
    await expect(SnapshotStore.open("/x", { fs, retainCount: 0 })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
  });

  it("never prunes the current snapshot, even when newer corrupt files fill the retention", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs, retainCount: 1 });
    await writeSnapshot(store, 50, 2, payload(1, 100));
    fs.flipBit(`${DIR}/${snapshotFileName(50, 2)}`, 40);
    const reopened = await SnapshotStore.open(DIR, { fs, retainCount: 1 });
    expect(reopened.newestMeta()).toBeUndefined();
    await writeSnapshot(reopened, 40, 2, payload(2, 100));
    expect(await fs.list(DIR)).toEqual([snapshotFileName(40, 2), snapshotFileName(50, 2)]);
    expect(reopened.newestMeta()?.index).toBe(40);
  });

  it("a failed fsync of the snapshot file is reported and leaves no snapshot", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const writer = await store.createWriter({ index: 9, term: 1, config: clusterConfigOf([1]) });
    await writer.write(payload(1, 5000));
    fs.failNextSync(".tmp");
    await expect(writer.finish()).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(store.newestMeta()).toBeUndefined();
    expect(await fs.list(DIR)).toEqual([]);
    // The store itself is still usable: nothing was renamed.
    await writeSnapshot(store, 9, 1, payload(1, 5000));
    expect(store.newestMeta()?.index).toBe(9);
  });

  it("a failed directory fsync after the rename makes the store refuse further writes", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const writer = await store.createWriter({ index: 9, term: 1, config: clusterConfigOf([1]) });
    const original = fs.syncDirectory.bind(fs);
    fs.syncDirectory = async () => {
      throw Object.assign(new Error("EIO: simulated"), { code: "EIO" });
    };
    await expect(writer.finish()).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    fs.syncDirectory = original;
    expect(store.failed()?.code).toBe("WAL_ERR_FAILED");
    await expect(store.createWriter({ index: 10, term: 1, config: clusterConfigOf([1]) })).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
  });

  it("receives an incoming snapshot in chunks at offsets, skips retransmissions, rejects gaps, installs atomically", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const data = payload(7, 2 * MiB + 5);
    const meta = { index: 500, term: 9, config: clusterConfigOf([1, 2, 3]), sizeBytes: data.length };
    const chunkBytes = 256 * 1024;
    for (let offset = 0; offset < data.length; offset += chunkBytes) {
      await store.writeIncomingChunk({ meta, offset, data: data.subarray(offset, offset + chunkBytes), done: offset + chunkBytes >= data.length });
      if (offset === chunkBytes) {
        // A retransmission of the previous chunk and an overlapping one change nothing.
        await store.writeIncomingChunk({ meta, offset: 0, data: data.subarray(0, chunkBytes), done: false });
        await store.writeIncomingChunk({ meta, offset: chunkBytes + 10, data: data.subarray(chunkBytes + 10, 2 * chunkBytes), done: false });
        await expect(store.writeIncomingChunk({ meta, offset: 3 * chunkBytes, data: new Uint8Array(1), done: false })).rejects.toMatchObject({
          code: "RAFTWAL_ERR_INVALID_ARGUMENT",
        });
      }
    }
    expect(store.incomingProgress()).toEqual({ index: 500, term: 9, bytes: data.length });
    expect(store.newestMeta()).toBeUndefined(); // not visible before install
    await expect(store.installIncoming({ ...meta, sizeBytes: data.length + 1 })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    expect(await store.installIncoming(meta)).toEqual(meta);
    fs.crash();
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(reopened.newestMeta()).toEqual(meta);
    expect(Buffer.compare(await readAll(reopened), data)).toBe(0);
  });

  it("an incoming transfer for another snapshot replaces the pending one; a partial transfer does not survive a restart", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    const a = { index: 10, term: 1, config: clusterConfigOf([1]), sizeBytes: 100 };
    const b = { index: 20, term: 2, config: clusterConfigOf([1]), sizeBytes: 10 };
    await expect(store.writeIncomingChunk({ meta: a, offset: 5, data: new Uint8Array(5), done: false })).rejects.toMatchObject({
      code: "RAFTWAL_ERR_INVALID_ARGUMENT",
    });
    await store.writeIncomingChunk({ meta: a, offset: 0, data: new Uint8Array(50), done: false });
    await store.writeIncomingChunk({ meta: b, offset: 0, data: payload(1, 10), done: true });
    await expect(store.installIncoming(a)).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await store.writeIncomingChunk({ meta: a, offset: 0, data: new Uint8Array(50), done: false });
    fs.crash();
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(await fs.list(DIR)).toEqual([]);
    expect(reopened.newestMeta()).toBeUndefined();
    expect(reopened.incomingProgress()).toBeUndefined();
  });

  it("a leftover incoming file is removed and reported at open", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    await store.writeIncomingChunk({ meta: { index: 10, term: 1, config: clusterConfigOf([1]), sizeBytes: 100 }, offset: 0, data: new Uint8Array(50), done: false });
    await fs.syncDirectory(DIR);
    fs.crash();
    const reopened = await SnapshotStore.open(DIR, { fs });
    expect(reopened.recovery.removedTemporaryFiles).toEqual([`incoming-${snapshotFileName(10, 1)}.tmp`]);
    expect(await fs.list(DIR)).toEqual([]);
  });

  it("an incoming snapshot older than the current one is kept but does not become current", async () => {
    const fs = new MemoryFileSystem();
    const store = await SnapshotStore.open(DIR, { fs });
    await writeSnapshot(store, 100, 5, payload(1, 10));
    const meta = { index: 50, term: 4, config: clusterConfigOf([1]), sizeBytes: 3 };
    await store.writeIncomingChunk({ meta, offset: 0, data: payload(2, 3), done: true });
    await store.installIncoming(meta);
    expect(store.newestMeta()?.index).toBe(100);
  });
});
