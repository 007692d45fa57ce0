/**
 * The file-system seam. Every byte the storage engine reads or writes goes through
 * these two interfaces, so tests can swap the real disk (`NodeFileSystem`) for an
 * in-memory one (`MemoryFileSystem`) that loses whatever was not synced at a
 * simulated crash, tears writes, flips bits and fails fsyncs on demand.
 *
 * Durability model (what a caller may rely on, on both implementations):
 * - Bytes written to a file are durable only after `sync()` of that file returns.
 * - A created, renamed or removed name is durable only after `syncDirectory()` of
 *   the directory holding it returns (POSIX: fsync of the parent directory).
 * - A failed `sync()` leaves the file in an unknown state; the caller must never
 *   retry it and report success (the WAL treats it as fatal).
 */

/** What a caller of `writeDurable` tells the file system about its own state; never changes what is durable. */
export interface DurableWriteHint {
  /**
   * The caller has nothing to do until this write is durable (no other write of its in
   * flight, nothing waiting to be encoded): the file system may block the calling thread for
   * it rather than hand it to a thread and wait to hear back.
   */
  callerIdle: boolean;
}

/** An open file. Positions and lengths are in bytes. */
export interface StorageFile {
  readonly path: string;
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; returns the count read (0 at end of file). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Synchronous read, for the Raft core's synchronous log reads. */
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Writes all of `data` at `position` (extending the file if needed), or throws. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes this file's data and size durable (fdatasync). */
  sync(): Promise<void>;
  /**
   * Writes all of `data` at `position` and resolves once those bytes are durable: the
   * guarantee of write() then sync() for this range (other unsynced writes to the file may
   * or may not become durable). On the real disk it is one write through an O_DSYNC
   * descriptor: one system call instead of two, made on the calling thread when `hint` says
   * the caller has nothing to overlap with it (up to NodeFileSystem's
   * blockingDurableWriteBytesMax) and through the thread pool otherwise. A failure leaves the
   * range in an unknown state, as a failed sync does. The hint is required so that a
   * wrapper cannot drop it by forwarding two arguments (every write would then go through
   * the pool); file systems without a thread pool ignore it.
   */
  writeDurable(data: Uint8Array, position: number, hint: DurableWriteHint): Promise<void>;
  /** Sets the file's length; extends with zero bytes. Durable after sync(). */
  truncate(length: number): Promise<void>;
  /** The file's current length (including unsynced writes). */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Create the file if it does not exist. */
  create?: boolean;
  /** With `create`: fail if the file already exists. */
  exclusive?: boolean;
  /** Open for reading only. */
  readOnly?: boolean;
}

/** An exclusive lock on a directory, held until `release()` or the end of the process. */
export interface DirectoryLock {
  readonly path: string;
  /** Lets the lock go. Calling it again does nothing. */
  release(): Promise<void>;
}

/** Who holds a directory's lock (the pid is unknown when the holder had not written it yet). */
export interface DirectoryLockHolder {
  pid?: number;
}

export interface FileSystem {
  /** Creates a directory and its parents if missing, and makes the new names durable. */
  ensureDirectory(path: string): Promise<void>;
  /** Names (not paths) of the entries in a directory, sorted. Throws ENOENT if missing. */
  list(directory: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /** Whether `path` exists and is a directory. */
  isDirectory(path: string): Promise<boolean>;
  open(path: string, options?: OpenOptions): Promise<StorageFile>;
  /** Atomically replaces `to` with `from`. Durable after syncDirectory(). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. Durable after syncDirectory(). Missing files are not an error. */
  remove(path: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, removes) durable. */
  syncDirectory(path: string): Promise<void>;
  /** Reads a whole (small) file. */
  readFile(path: string): Promise<Uint8Array>;
  /**
   * Takes an exclusive lock on an existing directory for as long as this process lives, or
   * until release(); throws WAL_ERR_LOCKED when another holder has it. No lock may outlive
   * its process (storage/fs/directory-lock.ts).
   */
  lockDirectory(directory: string): Promise<DirectoryLock>;
  /** Who holds the directory's lock now (undefined: nobody), without taking it or writing anything. */
  directoryLockHolder(directory: string): Promise<DirectoryLockHolder | undefined>;
}
