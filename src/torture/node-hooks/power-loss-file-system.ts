/**
 * Power loss on a real disk, for the torture tool (`raftwal node --fault-power-loss`): a
 * FileSystem (storage/fs/file-system.ts) the node's storage runs on through its `fs` seam.
 *
 * Wraps a FileSystem (normally NodeFileSystem) and holds every write and truncate made to
 * a file since that file's last `sync()` in memory, in order. Reads through any handle
 * (and `readFile`) see them, exactly as the page cache would; `sync()` writes them to the
 * real file, in order, then syncs it. So when the process is killed with SIGKILL, the
 * real file holds exactly what was synced, as if the machine had lost power: the OS
 * cannot save bytes it never received.
 *
 * Torn writes: `tear(random)` writes a random prefix of each file's unsynced changes to
 * the real file (whole operations, then part of the next one) without syncing; the
 * caller then kills the process. That is what a power loss during a write-back can leave
 * (the WAL's "sector writes are not atomic" assumption, FORMAT.md).
 *
 * Model and its limits (documented so a reader knows what is and is not simulated):
 * - Data is volatile until the file's `sync()`; the unsynced changes of a file are kept
 *   in memory (bounded by UNSYNCED_BYTES_MAX per file: beyond it, a write throws, as a
 *   full disk would, rather than growing without bound).
 * - Names (create, rename, remove) take effect on the real disk at once, as if the
 *   directory were always synced. The storage engine syncs directories after every such
 *   change, so this only hides bugs of a missing directory fsync, which the in-memory
 *   MemoryFileSystem tests cover.
 * - A file created and not yet synced exists on disk with the length it had at its last
 *   sync (0 when new).
 * - A handle belongs to its file, not to its path, as a descriptor belongs to its inode: it
 *   sees that file's changes after a rename, and another handle opening, measuring and
 *   closing the path meanwhile never changes what it sees (the node's /status opens every
 *   WAL file while the WAL works on them). Changes a sync is writing to the real file stay
 *   visible until that sync is done, so no reader sees the file shrink meanwhile.
 * - The directory lock is the real one (the base's flock), so the kernel drops it at the
 *   kill, exactly as for a node on the plain disk.
 */
import { closeSync, openSync, writeSync, ftruncateSync } from "node:fs";
import type { DirectoryLock, DirectoryLockHolder, FileSystem, OpenOptions, StorageFile } from "../../../storage/fs/file-system.js";
import { NodeFileSystem } from "../../../storage/fs/node-file-system.js";

/** Bound on one file's unsynced bytes held in memory: the WAL preallocates 64 MiB segments. */
export const UNSYNCED_BYTES_MAX = 256 * 1024 * 1024;

type PendingChange = { kind: "write"; position: number; data: Uint8Array } | { kind: "truncate"; length: number };

/**
 * The volatile state of one file (kept while a handle is open on it or changes are held):
 * what the real file has (its synced length) and what is not yet durable. Handles hold it
 * directly; `paths` maps the file's current name to it.
 */
interface FileState {
  /** Length of the real file before the changes below (it changes only when a sync completes, or at a tear). */
  baseLength: number;
  /** Changes a sync in progress took and is writing to the real file, in order: not durable until it completes. */
  syncing: PendingChange[];
  /** Changes no sync has taken yet, in order (after `syncing`). */
  pending: PendingChange[];
  pendingBytes: number;
  /** Handles open on this file (a sync through any of them flushes the file). */
  handles: Set<PowerLossFile>;
}

/** Every change not known durable, oldest first. */
function unsynced(state: FileState): PendingChange[] {
  return state.syncing.length === 0 ? state.pending : [...state.syncing, ...state.pending];
}

/** `length` with `changes` applied in order. */
function lengthAfter(length: number, changes: PendingChange[]): number {
  for (const change of changes) {
    length = change.kind === "write" ? Math.max(length, change.position + change.data.length) : change.length;
  }
  return length;
}

/** The logical length of a file: the real length with every change not yet durable applied. */
function logicalLength(state: FileState): number {
  return lengthAfter(state.baseLength, unsynced(state));
}

/**
 * Overlays the changes not yet durable on `buffer[offset .. offset+count)`, which holds the real
 * file's bytes of [position, position+count) (zeros past its end). Pure.
 */
function overlay(state: FileState, buffer: Uint8Array, offset: number, count: number, position: number): void {
  const end = position + count;
  for (const change of unsynced(state)) {
    if (change.kind === "write") {
      const from = Math.max(position, change.position);
      const to = Math.min(end, change.position + change.data.length);
      if (from < to) buffer.set(change.data.subarray(from - change.position, to - change.position), offset + (from - position));
    } else if (change.length < end) {
      const from = Math.max(position, change.length);
      buffer.fill(0, offset + (from - position), offset + count);
    }
  }
}

class PowerLossFile implements StorageFile {
  constructor(
    private readonly owner: PowerLossFileSystem,
    /** The name it was opened with (the file may have been renamed since). */
    readonly path: string,
    private readonly base: StorageFile,
    private readonly readOnly: boolean,
    /** Its file's state: never looked up by path, which may name another file by now. */
    private readonly fileState: FileState,
  ) {}

  private state(): FileState {
    return this.fileState;
  }

  // One read path: the overlay of unsynced writes is merged synchronously. This file
  // system exists for torture runs, where a blocking read of the base file is harmless.
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.readSync(buffer, offset, length, position);
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    const state = this.state();
    if (state.pending.length === 0 && state.syncing.length === 0) return this.base.readSync(buffer, offset, length, position);
    const count = Math.max(0, Math.min(length, logicalLength(state) - position));
    if (count === 0) return 0;
    buffer.fill(0, offset, offset + count);
    const fromBase = Math.max(0, Math.min(count, state.baseLength - position));
    let done = 0;
    while (done < fromBase) {
      const read = this.base.readSync(buffer, offset + done, fromBase - done, position + done);
      if (read === 0) break;
      done += read;
    }
    overlay(state, buffer, offset, count, position);
    return count;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.readOnly) throw Object.assign(new Error(`EBADF: ${this.path} is open read-only`), { code: "EBADF" });
    const state = this.state();
    if (state.pendingBytes + data.length > UNSYNCED_BYTES_MAX) {
      throw Object.assign(new Error(`ENOSPC: more than ${UNSYNCED_BYTES_MAX} unsynced bytes held for ${this.path}`), { code: "ENOSPC" });
    }
    // Copy: the caller may reuse its buffer once write resolves (the WAL does).
    state.pending.push({ kind: "write", position, data: Uint8Array.from(data) });
    state.pendingBytes += data.length;
  }

  async sync(): Promise<void> {
    // An armed tear strikes at the first sync: the write it would make durable is in flight.
    this.owner.strikeIfArmed();
    const state = this.state();
    // Take the changes first: writes made while this sync runs stay pending for the next one.
    // They stay visible (as `syncing`) until it is done: the real file is being changed meanwhile.
    const changes = state.pending;
    state.syncing.push(...changes);
    state.pending = [];
    state.pendingBytes = 0;
    const settle = (): void => {
      const taken = new Set(changes);
      state.syncing = state.syncing.filter((change) => !taken.has(change));
    };
    try {
      for (const change of changes) {
        if (change.kind === "write") await this.base.write(change.data, change.position);
        else await this.base.truncate(change.length);
      }
      await this.base.sync();
    } catch (error) {
      // The real file is now in an unknown state (as after a failed fsync): keep none of these changes.
      settle();
      state.baseLength = await this.base.size().catch(() => state.baseLength);
      throw error;
    }
    settle();
    state.baseLength = lengthAfter(state.baseLength, changes);
    this.owner.forgetIfIdle(state);
  }

  /** As write() then sync(): the bytes are durable on the real file when it resolves. */
  async writeDurable(data: Uint8Array, position: number): Promise<void> {
    await this.write(data, position);
    await this.sync();
  }

  async truncate(length: number): Promise<void> {
    if (this.readOnly) throw Object.assign(new Error(`EBADF: ${this.path} is open read-only`), { code: "EBADF" });
    this.state().pending.push({ kind: "truncate", length });
  }

  async size(): Promise<number> {
    return logicalLength(this.state());
  }

  async close(): Promise<void> {
    // Closing does not make data durable (close(2) does not fsync).
    const state = this.state();
    state.handles.delete(this);
    this.owner.forgetIfIdle(state);
    await this.base.close();
  }
}

export type TearReport = Array<{ path: string; changesKept: number; changesTotal: number; bytesOfLastKept: number }>;

export class PowerLossFileSystem implements FileSystem {
  /** The state of each file by its current name. Invariant: a handle's state is the one of its file's current name, or its file was removed. */
  private readonly paths = new Map<string, FileState>();
  private armed: { random: () => number; then: (report: TearReport) => void } | undefined;

  constructor(private readonly base: FileSystem = new NodeFileSystem()) {}

  /**
   * @internal Drops a file's state once no handle is open on it and nothing of it is held:
   * the next open reads the real length. Changes of a closed file are kept: they are still
   * in the "page cache".
   */
  forgetIfIdle(state: FileState): void {
    if (state.handles.size > 0 || state.pending.length > 0 || state.syncing.length > 0) return;
    for (const [path, known] of this.paths) {
      if (known === state) this.paths.delete(path);
    }
  }

  /** Unsynced bytes held in memory, over every file. */
  unsyncedBytes(): number {
    let total = 0;
    for (const state of this.paths.values()) total += state.pendingBytes;
    return total;
  }

  ensureDirectory(path: string): Promise<void> {
    return this.base.ensureDirectory(path);
  }

  list(directory: string): Promise<string[]> {
    return this.base.list(directory);
  }

  exists(path: string): Promise<boolean> {
    return this.base.exists(path);
  }

  isDirectory(path: string): Promise<boolean> {
    return this.base.isDirectory(path);
  }

  async open(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    const baseFile = await this.base.open(path, options);
    let realLength: number;
    try {
      realLength = await baseFile.size();
    } catch (error) {
      await baseFile.close().catch(() => undefined);
      throw error;
    }
    // No await from here on: the state found is the one the handle joins. (Looked up before
    // an await, it could be dropped meanwhile by another handle's close, and this handle
    // would then see a file nobody else sees, 0 bytes long to the next one to open it.)
    let state = this.paths.get(path);
    if (state === undefined) {
      state = { baseLength: realLength, syncing: [], pending: [], pendingBytes: 0, handles: new Set() };
      this.paths.set(path, state);
    }
    const file = new PowerLossFile(this, path, baseFile, options.readOnly === true, state);
    state.handles.add(file);
    return file;
  }

  async rename(from: string, to: string): Promise<void> {
    await this.base.rename(from, to);
    const state = this.paths.get(from);
    this.paths.delete(from);
    if (state) this.paths.set(to, state);
    else this.paths.delete(to);
  }

  async remove(path: string): Promise<void> {
    await this.base.remove(path);
    this.paths.delete(path);
  }

  syncDirectory(path: string): Promise<void> {
    return this.base.syncDirectory(path);
  }

  lockDirectory(directory: string): Promise<DirectoryLock> {
    return this.base.lockDirectory(directory);
  }

  directoryLockHolder(directory: string): Promise<DirectoryLockHolder | undefined> {
    return this.base.directoryLockHolder(directory);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const state = this.paths.get(path);
    if (!state || unsynced(state).length === 0) return this.base.readFile(path);
    const file = await this.open(path, { readOnly: true });
    try {
      const length = await file.size();
      const buffer = new Uint8Array(length);
      const read = await file.read(buffer, 0, length, 0);
      return buffer.subarray(0, read);
    } finally {
      await file.close();
    }
  }

  /**
   * Arms a tear for the next `sync()` of any file: instead of syncing, it tears (see
   * `tear`) and calls `then` with the report (which kills the process). So the crash
   * lands while a write is in flight, the case torn-tail recovery exists for.
   */
  armTear(random: () => number, then: (report: TearReport) => void): void {
    this.armed = { random, then };
  }

  /** @internal Fires an armed tear (called by sync()). */
  strikeIfArmed(): void {
    const armed = this.armed;
    if (!armed) return;
    this.armed = undefined;
    armed.then(this.tear(armed.random));
  }

  /**
   * A torn write-back: for every file with unsynced changes, writes a random number of
   * its first changes whole and a random prefix of the next one to the real file (no
   * fsync), choosing with `random` (in [0, 1)). `changesKept` counts the whole ones. Synchronous, so nothing else runs before the caller kills
   * the process. Only for the real disk (paths are node:fs paths). Returns what it wrote.
   */
  tear(random: () => number): TearReport {
    const report: TearReport = [];
    for (const [path, state] of this.paths) {
      // A sync in progress is torn too: its changes are not durable until it completes.
      const changes = unsynced(state);
      if (changes.length === 0) continue;
      // Changes before the torn one land whole; the torn one lands as a random prefix.
      const torn = Math.floor(random() * changes.length);
      let bytesOfLastKept = 0;
      const fd = openSync(path, "r+");
      try {
        for (let k = 0; k <= torn; k++) {
          const change = changes[k];
          if (change.kind === "write") {
            const bytes = k === torn ? Math.floor(random() * (change.data.length + 1)) : change.data.length;
            writeSync(fd, change.data, 0, bytes, change.position);
            bytesOfLastKept = bytes;
          } else {
            ftruncateSync(fd, change.length);
          }
        }
      } finally {
        closeSync(fd);
      }
      const changesKept = torn;
      report.push({ path, changesKept, changesTotal: changes.length, bytesOfLastKept });
    }
    return report;
  }
}
