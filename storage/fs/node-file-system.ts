/** The real disk, through node:fs. */
import { constants, promises as fsp, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import fse from "fs-extra";
import { flockHolder, lockDirectoryWithFlock } from "./directory-lock.js";
import type { DirectoryLock, DirectoryLockHolder, FileSystem, OpenOptions, StorageFile } from "./file-system.js";

/** Writes all of `data` at `position` through `handle`: a short write is legal for write(2), so keep going. */
async function writeAll(handle: FileHandle, path: string, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
    if (bytesWritten === 0) throw new Error(`write to ${path} made no progress`);
    written += bytesWritten;
  }
}

class NodeFile implements StorageFile {
  /** A second descriptor of the same file opened with O_DSYNC, for writeDurable (opened on first use). */
  private durableHandle: Promise<FileHandle> | undefined;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return readSync(this.handle.fd, buffer, offset, length, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return writeAll(this.handle, this.path, data, position);
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  /**
   * With O_DSYNC, write(2) returns once the bytes and the metadata needed to read them are
   * durable (POSIX synchronized I/O data integrity): what write + fdatasync give, in one call.
   */
  async writeDurable(data: Uint8Array, position: number): Promise<void> {
    this.durableHandle ??= fsp.open(this.path, constants.O_RDWR | constants.O_DSYNC);
    await writeAll(await this.durableHandle, this.path, data, position);
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    const durable = this.durableHandle;
    this.durableHandle = undefined;
    if (durable) await durable.then((handle) => handle.close()).catch(() => undefined);
    await this.handle.close();
  }
}

export class NodeFileSystem implements FileSystem {
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
    return new NodeFile(path, await fsp.open(path, flags, 0o644));
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
