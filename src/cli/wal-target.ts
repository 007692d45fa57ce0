/**
 * Which directories a `raftwal wal ... DIR` command looks at.
 *
 * DIR may be a node's data directory (it contains `wal/`; then `hardstate/` and `snap/`
 * beside it are inspected too) or a WAL directory itself (it contains segment files;
 * then only the WAL is inspected). Anything else is a one-line error.
 *
 * The directory a running node locks (storage/fs/directory-lock.ts) is its data directory:
 * DIR itself, or the parent of a WAL directory named `wal/` beside a `hardstate/` or a LOCK.
 */
import { basename, dirname, join } from "node:path";
import { LOCK_FILE_NAME } from "../../storage/fs/directory-lock.js";
import type { DirectoryLockHolder, FileSystem } from "../../storage/fs/file-system.js";
import { HARD_STATE_DIRECTORY_NAME, SNAPSHOT_DIRECTORY_NAME, WAL_DIRECTORY_NAME } from "../../storage/raft-storage.js";
import { listSegments, parseSegmentFileName } from "../../storage/wal/index.js";
import { CliError, type CliIo } from "./io.js";

export interface WalTarget {
  /** The directory holding the segment files. */
  walDirectory: string;
  /** Set when DIR is a node's data directory. */
  hardStateDirectory?: string;
  snapshotDirectory?: string;
  /** The node data directory whose lock guards this WAL; undefined for a WAL directory on its own. */
  lockDirectory?: string;
}

export async function resolveWalTarget(fs: FileSystem, directory: string): Promise<WalTarget> {
  const target = await locateWalTarget(fs, directory);
  await checkWalSegments(fs, target);
  return target;
}

/**
 * Resolves DIR for a read-only command (inspect, dump, verify). They read a directory a
 * live process holds, but say so on stderr in one line: what they show may change under
 * them (a batch being written reads as a torn tail). Returns the holder, if any.
 */
export async function readWalTarget(io: Required<CliIo>, directory: string): Promise<{ target: WalTarget; holder?: DirectoryLockHolder }> {
  const target = await resolveWalTarget(io.fs, directory);
  const holder = target.lockDirectory === undefined ? undefined : await io.fs.directoryLockHolder(target.lockDirectory);
  if (!holder) return { target };
  io.stderr.write(
    `raftwal: warning: ${target.lockDirectory} is in use by process ${holder.pid ?? "(pid unknown)"} (a running node?); reading it anyway, and what it writes meanwhile may read as a torn tail\n`,
  );
  return { target, holder };
}

/** Which directories DIR names, from their names and kinds only (nothing inside a file is read). */
export async function locateWalTarget(fs: FileSystem, directory: string): Promise<WalTarget> {
  if (!(await fs.exists(directory))) throw new CliError(`${directory}: no such file or directory`);
  if (!(await fs.isDirectory(directory))) {
    const hint = parseSegmentFileName(directory.split("/").pop() ?? "") !== undefined ? " (give the directory that holds the segment)" : "";
    throw new CliError(`${directory} is a file, not a node data directory or a WAL directory${hint}`);
  }
  const walDirectory = join(directory, WAL_DIRECTORY_NAME);
  if (await fs.isDirectory(walDirectory)) {
    return {
      walDirectory,
      hardStateDirectory: join(directory, HARD_STATE_DIRECTORY_NAME),
      snapshotDirectory: join(directory, SNAPSHOT_DIRECTORY_NAME),
      lockDirectory: directory,
    };
  }
  const parent = dirname(directory);
  const insideNodeDirectory =
    basename(directory) === WAL_DIRECTORY_NAME && ((await fs.isDirectory(join(parent, HARD_STATE_DIRECTORY_NAME))) || (await fs.exists(join(parent, LOCK_FILE_NAME))));
  return insideNodeDirectory ? { walDirectory: directory, lockDirectory: parent } : { walDirectory: directory };
}

/** Refuses a target without raftwal segments (reads segment headers). */
export async function checkWalSegments(fs: FileSystem, target: WalTarget): Promise<void> {
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
}
