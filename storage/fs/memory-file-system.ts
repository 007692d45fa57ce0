/**
 * An in-memory file system for tests, with the faults a real disk can produce.
 *
 * Every file keeps two images: what a reader sees now, and what would survive a
 * power loss (the image at its last successful sync). Every directory keeps its
 * current names and its durable names (as of its last syncDirectory). `crash()`
 * throws away everything not durable, optionally keeping a prefix of each file's
 * unsynced bytes (a torn write), and invalidates every open handle.
 *
 * Faults on demand: fail the next sync or write (optionally after writing part of
 * it), flip a bit, truncate a file behind the engine's back.
 *
 * Directory locks are held in memory, one holder per directory; `crash()` drops them all,
 * as the kernel drops a dead process's flock locks.
 */
import { dirname, basename, posix } from "node:path";
import { directoryLockedError } from "./directory-lock.js";
import type { DirectoryLock, DirectoryLockHolder, FileSystem, OpenOptions, StorageFile } from "./file-system.js";

interface Inode {
  data: Uint8Array; // current length is `length`; capacity may be larger
  length: number;
  durable: Uint8Array; // exact image at the last sync
  /** Lowest byte position written since the last sync (Infinity when clean). */
  dirtyFrom: number;
  /** End of the highest byte range written since the last sync (0 when clean). */
  dirtyTo: number;
}

interface Directory {
  names: Map<string, Inode>;
  durableNames: Map<string, Inode>;
}

export interface WriteFault {
  /** Only files whose path ends with this are affected (default: any). */
  pathSuffix?: string;
  /** Bytes of the write that land before the error (default 0). */
  bytesWritten?: number;
}

export interface CrashOptions {
  /**
   * For each file with unsynced bytes, how many of them (counted from the lowest
   * unsynced position) survive the crash. Default: none. Lets tests tear a write
   * at any byte.
   */
  keepUnsyncedBytes?: (path: string, unsyncedBytes: number) => number;
}

function ioError(code: string, message: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${message}`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

function normalize(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith("/") ? normalized.slice(0, -1) : normalized;
}

class MemoryFile implements StorageFile {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly inode: Inode,
    private readonly fs: MemoryFileSystem,
    private readonly generation: number,
    private readonly readOnly: boolean,
  ) {}

  private check(): void {
    if (this.closed) throw ioError("EBADF", `${this.path} is closed`);
    if (this.generation !== this.fs.generation) throw ioError("EBADF", `${this.path} was open across a simulated crash`);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.readSync(buffer, offset, length, position);
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.check();
    const count = Math.max(0, Math.min(length, this.inode.length - position));
    buffer.set(this.inode.data.subarray(position, position + count), offset);
    return count;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.check();
    if (this.readOnly) throw ioError("EBADF", `${this.path} is open read-only`);
    const fault = this.fs.takeWriteFault(this.path);
    const landed = fault ? Math.min(fault.bytesWritten ?? 0, data.length) : data.length;
    this.put(data.subarray(0, landed), position);
    if (fault) throw ioError("EIO", `simulated write failure on ${this.path}`);
  }

  private put(data: Uint8Array, position: number): void {
    const inode = this.inode;
    const end = position + data.length;
    if (end > inode.data.length) {
      const grown = new Uint8Array(Math.max(end, inode.data.length * 2));
      grown.set(inode.data.subarray(0, inode.length));
      inode.data = grown;
    }
    // A write past the end fills the gap with zeros: that gap is written too.
    const written = Math.min(position, inode.length);
    if (position > inode.length) inode.data.fill(0, inode.length, position);
    inode.data.set(data, position);
    inode.length = Math.max(inode.length, end);
    inode.dirtyFrom = Math.min(inode.dirtyFrom, written);
    inode.dirtyTo = Math.max(inode.dirtyTo, end);
  }

  async sync(): Promise<void> {
    this.check();
    if (this.fs.takeSyncFault(this.path)) throw ioError("EIO", `simulated fsync failure on ${this.path}`);
    const inode = this.inode;
    if (inode.durable.length === inode.length && inode.dirtyFrom !== Infinity) {
      // Same size as the durable image (a preallocated file): copy only what changed, so
      // a sync costs what was written, not the file's size.
      inode.durable.set(inode.data.subarray(inode.dirtyFrom, Math.min(inode.dirtyTo, inode.length)), inode.dirtyFrom);
    } else if (inode.durable.length !== inode.length || inode.dirtyFrom !== Infinity) {
      inode.durable = inode.data.slice(0, inode.length);
    }
    inode.dirtyFrom = Infinity;
    inode.dirtyTo = 0;
  }

  /** As write() then sync() (through this object's own methods, so a wrapper that replaces them on the instance sees both). */
  async writeDurable(data: Uint8Array, position: number): Promise<void> {
    await this.write(data, position);
    await this.sync();
  }

  async truncate(length: number): Promise<void> {
    this.check();
    const inode = this.inode;
    if (length > inode.length) {
      this.put(new Uint8Array(length - inode.length), inode.length);
    } else {
      inode.length = length;
      inode.dirtyFrom = Math.min(inode.dirtyFrom, length);
    }
  }

  async size(): Promise<number> {
    this.check();
    return this.inode.length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class MemoryFileSystem implements FileSystem {
  /** Bumped by every crash; handles from an older generation refuse to work. */
  generation = 0;
  private readonly directories = new Map<string, Directory>([["/", { names: new Map(), durableNames: new Map() }]]);
  private readonly syncFaults: Array<string | undefined> = [];
  private readonly writeFaults: WriteFault[] = [];
  /** Counters tests can assert on. */
  readonly stats = { syncs: 0, directorySyncs: 0, writes: 0 };
  /** Locked directory -> its holder's token (release() removes only its own). */
  private readonly directoryLocks = new Map<string, object>();

  // ---- faults -------------------------------------------------------------

  /** The next sync of a file whose path ends with `pathSuffix` (any file if omitted) fails with EIO. */
  failNextSync(pathSuffix?: string): void {
    this.syncFaults.push(pathSuffix);
  }

  /** The next write matching the fault fails with EIO after `bytesWritten` bytes landed. */
  failNextWrite(fault: WriteFault = {}): void {
    this.writeFaults.push(fault);
  }

  /** Flips one bit of a file, in its current and its durable image (media corruption). */
  flipBit(path: string, position: number, bit = 0): void {
    const inode = this.inode(path);
    if (position >= inode.length) throw new RangeError(`flipBit: ${path} has ${inode.length} bytes, position ${position}`);
    inode.data[position] ^= 1 << bit;
    if (position < inode.durable.length) inode.durable[position] ^= 1 << bit;
  }

  /** Cuts a file to `length` bytes, current and durable image alike. */
  truncateFile(path: string, length: number): void {
    const inode = this.inode(path);
    inode.length = Math.min(inode.length, length);
    inode.durable = inode.durable.slice(0, Math.min(inode.durable.length, length));
  }

  /** Overwrites a file's bytes at `position`, current and durable image alike. */
  overwrite(path: string, position: number, data: Uint8Array): void {
    const inode = this.inode(path);
    if (position + data.length > inode.length) throw new RangeError(`overwrite: past the end of ${path}`);
    inode.data.set(data, position);
    if (position + data.length <= inode.durable.length) inode.durable.set(data, position);
  }

  /** The bytes a reader sees now. */
  currentBytes(path: string): Uint8Array {
    const inode = this.inode(path);
    return inode.data.slice(0, inode.length);
  }

  /** The bytes that would survive a crash now. */
  durableBytes(path: string): Uint8Array {
    return this.inode(path).durable.slice();
  }

  /** Simulates power loss: only durable data and durable names survive. */
  crash(options: CrashOptions = {}): void {
    this.generation++;
    this.directoryLocks.clear();
    this.syncFaults.length = 0;
    this.writeFaults.length = 0;
    const seen = new Set<Inode>();
    for (const [dirPath, directory] of this.directories) {
      directory.names = new Map(directory.durableNames);
      for (const [name, inode] of directory.names) {
        if (seen.has(inode)) continue;
        seen.add(inode);
        this.restoreDurable(posix.join(dirPath, name), inode, options);
      }
    }
  }

  private restoreDurable(path: string, inode: Inode, options: CrashOptions): void {
    let image = inode.durable;
    if (inode.dirtyFrom !== Infinity && options.keepUnsyncedBytes) {
      const unsynced = Math.max(0, inode.length - inode.dirtyFrom);
      const keep = Math.max(0, Math.min(unsynced, options.keepUnsyncedBytes(path, unsynced)));
      if (keep > 0) {
        const end = Math.max(image.length, inode.dirtyFrom + keep);
        const torn = new Uint8Array(end);
        torn.set(image.subarray(0, Math.min(image.length, end)));
        torn.set(inode.data.subarray(inode.dirtyFrom, inode.dirtyFrom + keep), inode.dirtyFrom);
        image = torn;
      }
    }
    inode.durable = image.slice();
    inode.data = image.slice();
    inode.length = image.length;
    inode.dirtyFrom = Infinity;
    inode.dirtyTo = 0;
  }

  takeSyncFault(path: string): boolean {
    this.stats.syncs++;
    const i = this.syncFaults.findIndex((suffix) => suffix === undefined || path.endsWith(suffix));
    if (i < 0) return false;
    this.syncFaults.splice(i, 1);
    return true;
  }

  takeWriteFault(path: string): WriteFault | undefined {
    this.stats.writes++;
    const i = this.writeFaults.findIndex((f) => f.pathSuffix === undefined || path.endsWith(f.pathSuffix));
    if (i < 0) return undefined;
    return this.writeFaults.splice(i, 1)[0];
  }

  // ---- FileSystem ---------------------------------------------------------

  private directory(path: string): Directory {
    const directory = this.directories.get(normalize(path));
    if (!directory) throw ioError("ENOENT", `no such directory ${path}`);
    return directory;
  }

  private inode(path: string): Inode {
    const inode = this.directory(dirname(normalize(path))).names.get(basename(path));
    if (!inode) throw ioError("ENOENT", `no such file ${path}`);
    return inode;
  }

  async ensureDirectory(path: string): Promise<void> {
    // Directories are simple here: once created they are durable (the engine
    // still syncs parents; the real implementation needs it).
    const normalized = normalize(path);
    if (this.directories.has(normalized)) return;
    const parent = dirname(normalized);
    if (parent !== normalized) await this.ensureDirectory(parent);
    this.directories.set(normalized, { names: new Map(), durableNames: new Map() });
  }

  async list(directory: string): Promise<string[]> {
    const normalized = normalize(directory);
    const names = [...this.directory(normalized).names.keys()];
    for (const dirPath of this.directories.keys()) {
      if (dirPath !== normalized && dirname(dirPath) === normalized) names.push(basename(dirPath));
    }
    return names.sort();
  }

  async exists(path: string): Promise<boolean> {
    const normalized = normalize(path);
    if (this.directories.has(normalized)) return true;
    return this.directories.get(dirname(normalized))?.names.has(basename(normalized)) ?? false;
  }

  async isDirectory(path: string): Promise<boolean> {
    return this.directories.has(normalize(path));
  }

  async open(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    const normalized = normalize(path);
    if (this.directories.has(normalized)) throw ioError("EISDIR", `${path} is a directory`);
    const directory = this.directory(dirname(normalized));
    let inode = directory.names.get(basename(normalized));
    if (inode && options.create && options.exclusive) throw ioError("EEXIST", `${path} exists`);
    if (!inode) {
      if (!options.create) throw ioError("ENOENT", `no such file ${path}`);
      inode = { data: new Uint8Array(0), length: 0, durable: new Uint8Array(0), dirtyFrom: Infinity, dirtyTo: 0 };
      directory.names.set(basename(normalized), inode);
    }
    return new MemoryFile(normalized, inode, this, this.generation, options.readOnly ?? false);
  }

  async rename(from: string, to: string): Promise<void> {
    const source = this.directory(dirname(normalize(from)));
    const inode = source.names.get(basename(from));
    if (!inode) throw ioError("ENOENT", `no such file ${from}`);
    source.names.delete(basename(from));
    this.directory(dirname(normalize(to))).names.set(basename(to), inode);
  }

  async remove(path: string): Promise<void> {
    const normalized = normalize(path);
    this.directories.get(dirname(normalized))?.names.delete(basename(normalized));
  }

  async syncDirectory(path: string): Promise<void> {
    this.stats.directorySyncs++;
    const directory = this.directory(path);
    directory.durableNames = new Map(directory.names);
  }

  async readFile(path: string): Promise<Uint8Array> {
    return this.currentBytes(path);
  }

  async lockDirectory(path: string): Promise<DirectoryLock> {
    const normalized = normalize(path);
    this.directory(normalized); // ENOENT when missing, as open(2) of its LOCK file would be
    if (this.directoryLocks.has(normalized)) throw directoryLockedError(path, { pid: process.pid });
    const token = {};
    this.directoryLocks.set(normalized, token);
    return {
      path: normalized,
      release: async () => {
        if (this.directoryLocks.get(normalized) === token) this.directoryLocks.delete(normalized);
      },
    };
  }

  async directoryLockHolder(path: string): Promise<DirectoryLockHolder | undefined> {
    return this.directoryLocks.has(normalize(path)) ? { pid: process.pid } : undefined;
  }
}
