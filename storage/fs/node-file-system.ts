/** The real disk, through node:fs. */
import { close, constants, openSync, promises as fsp, readSync, write, writeSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import fse from "fs-extra";
import { flockHolder, lockDirectoryWithFlock } from "./directory-lock.js";
import type { DirectoryLock, DirectoryLockHolder, DurableWriteHint, FileSystem, OpenOptions, StorageFile } from "./file-system.js";

/** Writes up to `length` bytes of `data` from `offset` at `position`; resolves to the count written. */
type WriteSome = (data: Uint8Array, offset: number, length: number, position: number) => Promise<number>;

/** Writes all of `data` at `position` (a short write is legal for write(2), so keep going). */
async function writeAll(path: string, data: Uint8Array, position: number, writeSome: WriteSome): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const bytesWritten = await writeSome(data, written, data.length - written, position + written);
    if (bytesWritten === 0) throw new Error(`write to ${path} made no progress`);
    written += bytesWritten;
  }
}

/** write(2) on `fd` through libuv's thread pool. */
function writeThroughPool(fd: number): WriteSome {
  return (data, offset, length, position) =>
    new Promise((resolve, reject) => write(fd, data, offset, length, position, (error, bytesWritten) => (error ? reject(error) : resolve(bytesWritten))));
}

/** Writes all of `data` at `position` to `fd` with blocking calls (a short write is legal for write(2)). */
function writeAllBlocking(fd: number, path: string, data: Uint8Array, position: number): void {
  let written = 0;
  while (written < data.length) {
    const bytesWritten = writeSync(fd, data, written, data.length - written, position + written);
    if (bytesWritten === 0) throw new Error(`write to ${path} made no progress`);
    written += bytesWritten;
  }
}

export interface NodeFileSystemOptions {
  /**
   * A `writeDurable` whose caller is idle (its hint) of at most this many bytes is one
   * blocking O_DSYNC write on the calling thread; other ones go through libuv's thread pool.
   * 0: never block. Default BLOCKING_DURABLE_WRITE_BYTES_MAX.
   */
  blockingDurableWriteBytesMax?: number;
}

/**
 * Why a durable write blocks the event loop when its caller is idle: handing a write to the
 * thread pool and being told it finished are two cross-thread wake-ups, and on the 2-vCPU
 * virtual machines this was measured on (no guest halt polling) each wake-up of an idle CPU
 * costs tens of microseconds. One 1 KiB O_DSYNC write took 283 us blocking against 547 us
 * through the thread pool (16 KiB: 359 / 594; 136 KiB: 590 / 640; README, "Blocking durable
 * writes"). A caller that has other work to overlap with the write (the WAL with a second
 * batch to encode) does better through the pool: blocking the ~130 KB batches of 256
 * appenders cost the WAL a quarter of its rate. The bound caps how long one write may hold
 * the event loop.
 */
export const BLOCKING_DURABLE_WRITE_BYTES_MAX = 1024 * 1024;

class NodeFile implements StorageFile {
  /** A second descriptor of the same file opened with O_DSYNC, for writeDurable (opened on first use), and write(2) on it through the thread pool. */
  private durable: { fd: number; writeSome: WriteSome } | undefined;
  /** Thread-pool writes on the O_DSYNC descriptor not yet finished: close waits for them (a closed fd number can be reused). */
  private readonly durableWritesInFlight = new Set<Promise<void>>();
  private closed = false;
  /** write(2) on the ordinary handle (built once: write() runs per zero-fill step and per non-WAL file write). */
  private readonly writeSome: WriteSome = async (data, offset, length, position) => (await this.handle.write(data, offset, length, position)).bytesWritten;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly blockingDurableWriteBytesMax: number,
  ) {}

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return readSync(this.handle.fd, buffer, offset, length, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return writeAll(this.path, data, position, this.writeSome);
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  /**
   * With O_DSYNC, write(2) returns once the bytes and the metadata needed to read them are
   * durable (POSIX synchronized I/O data integrity): what write + fdatasync give, in one
   * call. It blocks the calling thread when the caller is idle (BLOCKING_DURABLE_WRITE_BYTES_MAX
   * says why); either way a failure is a rejection, never a throw.
   */
  async writeDurable(data: Uint8Array, position: number, hint: DurableWriteHint): Promise<void> {
    if (this.closed) throw Object.assign(new Error(`EBADF: ${this.path} is closed`), { code: "EBADF" });
    // Opened blocking too: once per segment, a few microseconds, and no wake-up to wait for.
    if (this.durable === undefined) {
      const fd = openSync(this.path, constants.O_RDWR | constants.O_DSYNC);
      this.durable = { fd, writeSome: writeThroughPool(fd) };
    }
    if (hint.callerIdle && data.length <= this.blockingDurableWriteBytesMax) {
      writeAllBlocking(this.durable.fd, this.path, data, position);
      return;
    }
    const writing = writeAll(this.path, data, position, this.durable.writeSome);
    this.durableWritesInFlight.add(writing);
    try {
      await writing;
    } finally {
      this.durableWritesInFlight.delete(writing);
    }
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.durableWritesInFlight);
    const durable = this.durable;
    this.durable = undefined;
    // Closing does not flush; a failure to close the second descriptor loses nothing.
    if (durable !== undefined) await new Promise<void>((resolve) => close(durable.fd, () => resolve()));
    await this.handle.close();
  }
}

export class NodeFileSystem implements FileSystem {
  private readonly blockingDurableWriteBytesMax: number;

  constructor(options: NodeFileSystemOptions = {}) {
    const max = options.blockingDurableWriteBytesMax ?? BLOCKING_DURABLE_WRITE_BYTES_MAX;
    if (!(Number.isSafeInteger(max) && max >= 0)) throw new RangeError(`blockingDurableWriteBytesMax must be a whole number of bytes >= 0, not ${max}`);
    this.blockingDurableWriteBytesMax = max;
  }

  async ensureDirectory(path: string): Promise<void> {
    if (await this.isDirectory(path)) return;
    const parent = dirname(path);
    if (parent !== path) await this.ensureDirectory(parent);
    await fsp.mkdir(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
    // A new directory's name is durable only once its parent is synced.
    await this.syncDirectory(parent);
  }

  async list(directory: string): Promise<string[]> {
    return (await fsp.readdir(directory)).sort();
  }

  exists(path: string): Promise<boolean> {
    return fse.pathExists(path);
  }

  async isDirectory(path: string): Promise<boolean> {
    try {
      return (await fsp.stat(path)).isDirectory();
    } catch {
      return false;
    }
  }

  async open(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    let flags = options.readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (options.create) flags |= constants.O_CREAT;
    if (options.exclusive) flags |= constants.O_EXCL;
    return new NodeFile(path, await fsp.open(path, flags, 0o644), this.blockingDurableWriteBytesMax);
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  async remove(path: string): Promise<void> {
    await fsp.rm(path, { force: true });
  }

  async syncDirectory(path: string): Promise<void> {
    const handle = await fsp.open(path, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async readFile(path: string): Promise<Uint8Array> {
    return fsp.readFile(path);
  }

  /** flock(2) on `<directory>/LOCK`: the kernel drops it when the process dies (directory-lock.ts). */
  lockDirectory(directory: string): Promise<DirectoryLock> {
    return lockDirectoryWithFlock(directory);
  }

  directoryLockHolder(directory: string): Promise<DirectoryLockHolder | undefined> {
    return flockHolder(directory);
  }
}
