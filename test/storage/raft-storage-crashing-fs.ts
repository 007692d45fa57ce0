/**
 * A FileSystem wrapper for crash-point tests: it forwards to a MemoryFileSystem and,
 * when the operation counter reaches `crashAfterOperations`, performs that operation,
 * then simulates power loss (MemoryFileSystem.crash) and throws SimulatedCrash. Running
 * an action once per crash point checks every intermediate on-disk state. Mutating
 * operations (create/open-for-create, write, sync, truncate, close, rename, remove,
 * directory sync) are crash points; reads are not.
 */
import type { DirectoryLock, DirectoryLockHolder, FileSystem, OpenOptions, StorageFile } from "../../storage/fs/file-system.js";
import type { CrashOptions, MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

export class SimulatedCrash extends Error {
  constructor(readonly operation: string) {
    super(`simulated crash after ${operation}`);
  }
}

export class CrashingFileSystem implements FileSystem {
  operations = 0;
  crashed = false;

  constructor(
    readonly memory: MemoryFileSystem,
    /** Crash right after this many mutating operations (Infinity: never). */
    public crashAfterOperations = Infinity,
    private readonly crashOptions: CrashOptions = {},
  ) {}

  private async step<T>(name: string, run: () => Promise<T>): Promise<T> {
    if (this.crashed) throw new SimulatedCrash(`${name} (already crashed)`);
    const result = await run();
    this.operations++;
    if (this.operations >= this.crashAfterOperations) {
      this.crashed = true;
      this.memory.crash(this.crashOptions);
      throw new SimulatedCrash(name);
    }
    return result;
  }

  private wrapFile(file: StorageFile): StorageFile {
    const self = this;
    return {
      path: file.path,
      read: (b, o, l, p) => file.read(b, o, l, p),
      readSync: (b, o, l, p) => file.readSync(b, o, l, p),
      size: () => file.size(),
      write: (data, position) => self.step(`write ${file.path}`, () => file.write(data, position)),
      sync: () => self.step(`sync ${file.path}`, () => file.sync()),
      // Two crash points, as on a disk: after the bytes are written, and after they are durable.
      writeDurable: async (data, position) => {
        await self.step(`write ${file.path}`, () => file.write(data, position));
        await self.step(`sync ${file.path}`, () => file.sync());
      },
      truncate: (length) => self.step(`truncate ${file.path}`, () => file.truncate(length)),
      close: () => (self.crashed ? file.close() : self.step(`close ${file.path}`, () => file.close())),
    };
  }

  ensureDirectory(path: string): Promise<void> {
    return this.step(`ensureDirectory ${path}`, () => this.memory.ensureDirectory(path));
  }
  list(directory: string): Promise<string[]> {
    return this.memory.list(directory);
  }
  exists(path: string): Promise<boolean> {
    return this.memory.exists(path);
  }
  isDirectory(path: string): Promise<boolean> {
    return this.memory.isDirectory(path);
  }
  async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const mutating = options?.create === true;
    const file = mutating ? await this.step(`open ${path}`, () => this.memory.open(path, options)) : await this.memory.open(path, options);
    return this.wrapFile(file);
  }
  rename(from: string, to: string): Promise<void> {
    return this.step(`rename ${from}`, () => this.memory.rename(from, to));
  }
  remove(path: string): Promise<void> {
    return this.step(`remove ${path}`, () => this.memory.remove(path));
  }
  syncDirectory(path: string): Promise<void> {
    return this.step(`syncDirectory ${path}`, () => this.memory.syncDirectory(path));
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.memory.readFile(path);
  }
  // A lock is not a crash point: it writes nothing durable, and a crash drops it.
  lockDirectory(directory: string): Promise<DirectoryLock> {
    return this.memory.lockDirectory(directory);
  }
  directoryLockHolder(directory: string): Promise<DirectoryLockHolder | undefined> {
    return this.memory.directoryLockHolder(directory);
  }
}
