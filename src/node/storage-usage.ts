/**
 * How much disk a node's storage holds, for `/status` and `raftwal status`: the WAL's
 * files and the current snapshot. Read through the file-system seam, so it works on the
 * in-memory file system too.
 */
import { join } from "node:path";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { WAL_DIRECTORY_NAME } from "../../storage/raft-storage.js";
import type { SnapshotMeta } from "../raft/types.js";

export interface StorageUsage {
  /** Bytes of every file in the WAL directory: segments are preallocated, so this is the space they hold, used or not. */
  walBytes: number;
  /** WAL segment files (a preallocated spare included). */
  walSegments: number;
  /** The current snapshot: its index (0: none), term and size. */
  snapshotIndex: number;
  snapshotTerm: number;
  snapshotBytes: number;
}

export async function storageUsage(fs: FileSystem, dataDir: string, snapshot: SnapshotMeta): Promise<StorageUsage> {
  const walDirectory = join(dataDir, WAL_DIRECTORY_NAME);
  let walBytes = 0;
  let walSegments = 0;
  for (const name of await fs.list(walDirectory)) {
    let file;
    try {
      file = await fs.open(join(walDirectory, name), { readOnly: true });
    } catch {
      continue; // deleted meanwhile (a segment compacted away)
    }
    try {
      walBytes += await file.size();
    } finally {
      await file.close();
    }
    if (name.endsWith(".wal")) walSegments += 1;
  }
  return { walBytes, walSegments, snapshotIndex: snapshot.index, snapshotTerm: snapshot.term, snapshotBytes: snapshot.sizeBytes };
}
