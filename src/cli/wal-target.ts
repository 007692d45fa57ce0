/**
 * Which directories a `raftwal wal ... DIR` command looks at.
 *
 * DIR may be a node's data directory (it contains `wal/`; then `hardstate/` and `snap/`
 * beside it are inspected too) or a WAL directory itself (it contains segment files;
 * then only the WAL is inspected). Anything else is a one-line error.
 */
import { join } from "node:path";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { HARD_STATE_DIRECTORY_NAME, SNAPSHOT_DIRECTORY_NAME, WAL_DIRECTORY_NAME } from "../../storage/raft-storage.js";
import { listSegments, parseSegmentFileName } from "../../storage/wal/index.js";
import { CliError } from "./io.js";

export interface WalTarget {
  /** The directory holding the segment files. */
  walDirectory: string;
  /** Set when DIR is a node's data directory. */
  hardStateDirectory?: string;
  snapshotDirectory?: string;
}

export async function resolveWalTarget(fs: FileSystem, directory: string): Promise<WalTarget> {
  if (!(await fs.exists(directory))) throw new CliError(`${directory}: no such file or directory`);
  if (!(await fs.isDirectory(directory))) {
    const hint = parseSegmentFileName(directory.split("/").pop() ?? "") !== undefined ? " (give the directory that holds the segment)" : "";
    throw new CliError(`${directory} is a file, not a node data directory or a WAL directory${hint}`);
  }
  const walDirectory = join(directory, WAL_DIRECTORY_NAME);
  const target: WalTarget = (await fs.isDirectory(walDirectory))
    ? { walDirectory, hardStateDirectory: join(directory, HARD_STATE_DIRECTORY_NAME), snapshotDirectory: join(directory, SNAPSHOT_DIRECTORY_NAME) }
    : { walDirectory: directory };
  const names = await fs.list(target.walDirectory);
  if (!names.some((name) => parseSegmentFileName(name) !== undefined)) {
    throw new CliError(
      names.length === 0
        ? `${target.walDirectory} is empty: no raftwal WAL segments (segment-<id>.wal) in it`
        : `${target.walDirectory} holds no raftwal WAL segments (segment-<id>.wal); give a node data directory or a WAL directory`,
    );
  }
  // Files named like segments of which none has a valid header (and none is a blank
  // spare) are not a raftwal WAL at all, rather than a damaged one.
  const segments = await listSegments(target.walDirectory, fs);
  const bad = segments.find((segment) => segment.state === "bad-header");
  if (bad && segments.every((segment) => segment.state === "bad-header")) {
    throw new CliError(`${bad.path} is not a raftwal segment (${bad.reason ?? "bad header"})`);
  }
  return target;
}
