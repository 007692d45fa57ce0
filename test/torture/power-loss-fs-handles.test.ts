/**
 * PowerLossFileSystem with several handles on one file: a handle keeps seeing its own file
 * (its length, its unsynced writes) whatever other handles, renames and syncs do meanwhile.
 *
 * The first test replays the torture soak's "write offset inside the segment" (seed
 * 385858882): the WAL made a recycled file its next segment while /status polls
 * (src/node/storage-usage.ts) opened, measured and closed the same file, and the spare came
 * out 0 bytes long.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { storageUsage } from "../../src/node/storage-usage.js";
import { emptyClusterConfig } from "../../src/proto/schema.js";
import { PowerLossFileSystem } from "../../src/torture/node-hooks/power-loss-file-system.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { recycledFileName } from "../../storage/wal/naming.js";
import { ActiveSegment, prepareRecycledSpare } from "../../storage/wal/segment-writer.js";
import { HoldingFileSystem } from "./holding-file-system.js";

const SEGMENT_BYTES = 64 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftwal-powerloss-handles-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (text: string) => new TextEncoder().encode(text);

describe("PowerLossFileSystem, several handles on one file", () => {
  it("a recycled file made the next segment while /status polls measure it keeps its size", async () => {
    const walDir = join(dir, "wal");
    await new NodeFileSystem().ensureDirectory(walDir);
    const recycled = recycledFileName(1);
    await writeFile(join(walDir, recycled), new Uint8Array(SEGMENT_BYTES).fill(7));
    const base = new HoldingFileSystem();
    const fs = new PowerLossFileSystem(base);
    const poll = async () => (await storageUsage(fs, dir, { index: 0, term: 0, sizeBytes: 0, config: emptyClusterConfig() })).walBytes;

    // The WAL opens the recycled file; a poll opens, measures and closes it while that open reads its length...
    const lengthRead = base.hold("size");
    const preparing = prepareRecycledSpare(fs, walDir, recycled, 2, SEGMENT_BYTES);
    await lengthRead.reached;
    const polledDuringOpen = await poll();
    // ...and another while the blank header is being made durable.
    const headerSync = base.hold("sync");
    lengthRead.release();
    await headerSync.reached;
    const polledDuringSync = await poll();
    headerSync.release();
    const spare = await preparing;

    expect([polledDuringOpen, polledDuringSync]).toEqual([SEGMENT_BYTES, SEGMENT_BYTES]);
    expect(spare.sizeBytes).toBe(SEGMENT_BYTES);
    // What failed in the soak: activating a spare shorter than a segment header.
    const active = await ActiveSegment.activate(spare, 1);
    expect(active.remainingBytes()).toBe(SEGMENT_BYTES - 40);
    await spare.file.close();
  });

  it("another handle sees writes a sync is still writing to the real file", async () => {
    const base = new HoldingFileSystem();
    const fs = new PowerLossFileSystem(base);
    const path = join(dir, "growing");
    const writer = await fs.open(path, { create: true });
    await writer.write(bytes("0123456789"), 0);
    const held = base.hold("sync");
    const syncing = writer.sync();
    await held.reached;
    const reader = await fs.open(path, { readOnly: true });
    const buffer = new Uint8Array(10);
    const read = await reader.read(buffer, 0, 10, 0);
    const size = await reader.size();
    held.release();
    await syncing;
    expect({ size, read, text: new TextDecoder().decode(buffer) }).toEqual({ size: 10, read: 10, text: "0123456789" });
    expect(await writer.size()).toBe(10);
    await reader.close();
    await writer.close();
  });

  it("a handle opened before its file was renamed still sees that file's unsynced writes", async () => {
    const fs = new PowerLossFileSystem();
    const from = join(dir, "before");
    const to = join(dir, "after");
    const file = await fs.open(from, { create: true });
    await file.write(bytes("abc"), 0);
    await fs.rename(from, to);
    expect(await file.size()).toBe(3);
    expect(new TextDecoder().decode(await fs.readFile(to))).toBe("abc");
    // Its sync makes them durable in the file, now named `to`.
    await file.sync();
    await file.close();
    expect(new TextDecoder().decode(await new NodeFileSystem().readFile(to))).toBe("abc");
  });
});
