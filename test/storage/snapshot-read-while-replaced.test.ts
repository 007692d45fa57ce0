/**
 * A leader sends its snapshot in chunks (src/raft/leader.ts, sendSnapshotChunks): it reads
 * `snapshotMeta()`, restarts the transfer when the meta changed, then reads chunks with
 * `readSnapshotChunk`. The storage must change the meta and the file those chunks come
 * from together (src/torture/TORTURE.md, fixed bug 3: a snapshot taken while one was sent
 * made the reads serve the new, shorter file under the old meta, "snapshot N payload ends
 * at 247 of 269", and the leader stopped).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openRaftStorage, type RaftStorage } from "../../storage/raft-storage.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { entries, snapshotPayload } from "./raft-storage-helpers.js";

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

/** What one poll saw: the meta, then what a read of the whole payload from offset 0 gave. */
interface Poll {
  index: number;
  sizeBytes: number;
  read: Uint8Array | Error;
}

/**
 * Polls the meta and a read from offset 0, in one turn, on every turn of the event loop
 * (setImmediate) until `during` settles: what a leader's sender does between awaits.
 */
async function pollWhile(storage: RaftStorage, during: Promise<unknown>): Promise<Poll[]> {
  const polls: Poll[] = [];
  let settled = false;
  const poll = () => {
    if (settled) return;
    const meta = storage.snapshotMeta();
    let read: Uint8Array | Error;
    try {
      read = storage.readSnapshotChunk(0, 1 << 20);
    } catch (error) {
      read = error as Error;
    }
    polls.push({ index: meta.index, sizeBytes: meta.sizeBytes, read });
    setImmediate(poll);
  };
  setImmediate(poll);
  try {
    await during;
  } finally {
    settled = true;
  }
  poll();
  return polls;
}

describe("reading the snapshot while a newer one replaces it", () => {
  it("every read serves the snapshot the meta just read names, whole, before, during and after createSnapshot", async () => {
    const directory = await mkdtemp(join(tmpdir(), "raftwal-snapshot-replaced-"));
    directories.push(directory);
    // Retain one snapshot: the replaced one is pruned (deleted) while the new one is adopted.
    const storage = await openRaftStorage(directory, { wal: { segmentSizeBytes: 64 * 1024 }, snapshotRetainCount: 1 });
    await storage.append(entries(1, 200, 1, 100));
    await storage.saveHardState({ term: 1, vote: 1, commit: 200 });
    const payloads = new Map([
      [100, snapshotPayload(100, 1, 269)],
      [150, snapshotPayload(150, 1, 247)], // shorter: an old meta over the new file reads past its end
    ]);
    const config = clusterConfigOf([1, 2, 3]);
    await storage.createSnapshot({ index: 100, config }, [payloads.get(100)!]);
    const polls = await pollWhile(storage, storage.createSnapshot({ index: 150, config }, [payloads.get(150)!]));
    expect(polls.map((poll) => poll.index)).toContain(100);
    expect(polls[polls.length - 1].index).toBe(150);
    for (const [k, poll] of polls.entries()) {
      expect(poll.read, `poll ${k} saw the snapshot at ${poll.index}`).toBeInstanceOf(Uint8Array);
      expect(poll.sizeBytes).toBe(payloads.get(poll.index)!.length);
      expect(Buffer.from(poll.read as Uint8Array).equals(Buffer.from(payloads.get(poll.index)!)), `poll ${k} read the snapshot at ${poll.index}`).toBe(true);
    }
    await storage.close();
  });
});
