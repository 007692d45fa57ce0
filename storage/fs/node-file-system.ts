/** The real disk, through node:fs. */
import { constants, promises as fsp, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import fse from "fs-extra";
import { flockHolder, lockDirectoryWithFlock } from "./directory-lock.js";
import type { DirectoryLock, DirectoryLockHolder, FileSystem, OpenOptions, StorageFile } from "./file-system.js";

class NodeFile implements StorageFile {
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

  async write(data: Uint8Array, position: number): Promise<void> {
    let written = 0;
    // A short write is legal for write(2); keep going until everything is down.
    while (written < data.length) {
      const { bytesWritten } = await this.handle.write(data, written, data.length - written, position + written);
      if (bytesWritten === 0) throw new Error(`write to ${this.path} made no progress`);
      written += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
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
