/**
 * The data directory's lock: one process at a time opens a node's storage.
 *
 * Why: a second process on a live node's directory (a second node, `raftwal wal repair`)
 * would replay the same WAL, elect itself leader of a one-node cluster and write its term
 * and vote into the live node's hard state. So `openRaftStorage` takes this lock before it
 * reads anything, and holds it until `close()`.
 *
 * How: flock(2) with LOCK_EX | LOCK_NB on `<dir>/LOCK`, through the native addon `fs-ext`
 * (Node has no flock of its own). Why that is safe across `kill -9`: an flock lock belongs
 * to the open file description, and the kernel drops it when the last descriptor of that
 * description closes; when a process dies, however it dies (exit, crash, SIGKILL, the OOM
 * killer), the kernel closes its descriptors. So no lock outlives its process, and a
 * restart right after `kill -9` takes it at once: there is no stale lock to detect or time
 * out, unlike a lock file whose existence is the lock. For the same reason the LOCK file
 * is never removed (a process removing it while another opens it would let two processes
 * lock two different files); its content, the holder's pid, only feeds the error message.
 * Node opens files with O_CLOEXEC, so a child process does not inherit the lock.
 *
 * Limits: the lock is advisory (a program that does not ask for it is not stopped), and it
 * is meant for a local file system (Linux emulates flock on NFS with byte-range locks).
 */
import { constants, promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { RaftwalError, WalErrorCode } from "../errors.js";
import type { DirectoryLock, DirectoryLockHolder } from "./file-system.js";

/** The lock file's name inside the locked directory. */
export const LOCK_FILE_NAME = "LOCK";

/** Bytes of the LOCK file read for the holder's pid (a pid and a newline). */
const LOCK_FILE_BYTES_MAX = 32;

type FlockSync = (fd: number, flags: "exnb" | "shnb" | "un") => void;
let flockSync: FlockSync | undefined;

/** fs-ext, loaded at the first lock: a failed native build is then one clear error, not a failed import. */
function flock(): FlockSync {
  if (flockSync) return flockSync;
  try {
    flockSync = (createRequire(import.meta.url)("fs-ext") as { flockSync: FlockSync }).flockSync;
  } catch (error) {
    throw new Error(`the data directory lock needs the native module fs-ext (flock), which did not load: ${(error as Error).message}`, { cause: error });
  }
  return flockSync;
}

/** WAL_ERR_LOCKED for `directory`, naming its holder. */
export function directoryLockedError(directory: string, holder: DirectoryLockHolder): RaftwalError {
  const who =
    holder.pid === process.pid
      ? `this process (pid ${holder.pid}), which has it open already`
      : `process ${holder.pid ?? "(pid unknown)"} (a running node, or \`raftwal wal repair\`)`;
  return new RaftwalError(WalErrorCode.LOCKED, `data directory ${directory} is in use by ${who}: one process at a time may open it; stop that process first`);
}

function isWouldBlock(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "EAGAIN" || code === "EWOULDBLOCK";
}

async function readHolder(handle: FileHandle): Promise<DirectoryLockHolder> {
  const buffer = Buffer.alloc(LOCK_FILE_BYTES_MAX);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  const text = buffer.subarray(0, bytesRead).toString("utf8").trim();
  return /^\d+$/.test(text) ? { pid: Number(text) } : {};
}

/** Takes `directory`'s lock (creating its LOCK file if missing), or throws WAL_ERR_LOCKED. */
export async function lockDirectoryWithFlock(directory: string): Promise<DirectoryLock> {
  const path = join(directory, LOCK_FILE_NAME);
  const handle = await fsp.open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    flock()(handle.fd, "exnb");
  } catch (error) {
    const holder = isWouldBlock(error) ? await readHolder(handle).catch(() => ({})) : undefined;
    await handle.close();
    throw holder ? directoryLockedError(directory, holder) : error;
  }
  const pid = Buffer.from(`${process.pid}\n`);
  try {
    await handle.write(pid, 0, pid.length, 0);
    await handle.truncate(pid.length);
  } catch (error) {
    await handle.close(); // lets the lock go: a lock we could not label is not handed out
    throw error;
  }
  let released = false;
  return {
    path: directory,
    async release() {
      if (released) return;
      released = true;
      await handle.close(); // closing the only descriptor drops the lock
    },
  };
}

/**
 * Who holds `directory`'s lock, without creating or writing anything: undefined when no
 * live process does. It takes a shared lock for an instant, so a process taking the lock
 * in that same instant fails as if the directory were in use.
 */
export async function flockHolder(directory: string): Promise<DirectoryLockHolder | undefined> {
  let handle: FileHandle;
  try {
    handle = await fsp.open(join(directory, LOCK_FILE_NAME), constants.O_RDONLY);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined; // never locked
    throw error;
  }
  try {
    flock()(handle.fd, "shnb");
    flock()(handle.fd, "un");
    return undefined;
  } catch (error) {
    if (!isWouldBlock(error)) throw error;
    return await readHolder(handle);
  } finally {
    await handle.close();
  }
}
