import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { SnapshotFileWriter, SNAPSHOT_SYNC_EVERY_BYTES, SNAPSHOT_WRITE_BUFFER_BYTES } from "../../storage/snapshot/writer.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { Rng } from "../../src/rng.js";

const DIR = "/node/snap";
const MiB = 1024 * 1024;

describe("SnapshotFileWriter pacing", () => {
  it("syncs a large payload as it goes, so that sealing never flushes more than a few MiB at once", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory(DIR);
    const writer = await SnapshotFileWriter.create(fs, DIR, { index: 9, term: 2, config: clusterConfigOf([1, 2, 3]) }, "snapshot.tmp");
    const rng = new Rng(11);
    const totalBytes = 5 * SNAPSHOT_SYNC_EVERY_BYTES + 123;
    let written = 0;
    let mostUnsynced = 0;
    while (written < totalBytes) {
      // Odd chunk sizes, some larger than the write buffer (written directly).
      const size = Math.min(totalBytes - written, 1 + rng.int(2 * SNAPSHOT_WRITE_BUFFER_BYTES));
      await writer.write(new Uint8Array(size).fill(written & 0xff));
      written += size;
      const current = fs.currentBytes(writer.temporaryPath).length;
      const durable = fs.durableBytes(writer.temporaryPath).length;
      mostUnsynced = Math.max(mostUnsynced, current - durable);
    }
    // Never more unsynced than one pacing step, the buffer being flushed and one direct chunk.
    expect(mostUnsynced).toBeGreaterThan(0);
    expect(mostUnsynced).toBeLessThan(SNAPSHOT_SYNC_EVERY_BYTES + 3 * SNAPSHOT_WRITE_BUFFER_BYTES);
    expect(fs.durableBytes(writer.temporaryPath).length).toBeGreaterThanOrEqual(totalBytes - SNAPSHOT_SYNC_EVERY_BYTES - 3 * SNAPSHOT_WRITE_BUFFER_BYTES);
    // The pacing syncs make nothing durable early: sealing and committing still complete the file.
    const { meta } = await writer.commit();
    expect(meta.sizeBytes).toBe(totalBytes);
    expect(totalBytes).toBeGreaterThan(20 * MiB);
  });
});
