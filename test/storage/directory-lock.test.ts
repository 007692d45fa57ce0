/**
 * The data directory lock in-process: one open storage per directory, on the real disk
 * (flock through NodeFileSystem) and in memory (MemoryFileSystem). Real processes, kill -9
 * and a restart are in test/e2e/directory-lock.test.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LOCK_FILE_NAME } from "../../storage/fs/directory-lock.js";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { HARD_STATE_DIRECTORY_NAME, openRaftStorage, type RaftStorage } from "../../storage/raft-storage.js";
import { HARD_STATE_FILE_NAME } from "../../storage/hard-state.js";
import { entries } from "./raft-storage-helpers.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function nodeRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-lock-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function open(dir: string, fs: FileSystem): Promise<RaftStorage> {
  const storage = await openRaftStorage(dir, { fs });
  cleanups.push(() => storage.close());
  return storage;
}

describe.each([
  ["NodeFileSystem", async () => ({ fs: new NodeFileSystem() as FileSystem, root: await nodeRoot() })],
  ["MemoryFileSystem", async () => ({ fs: new MemoryFileSystem() as FileSystem, root: "/data" })],
])("%s", (_name, setup) => {
  it("a second open of a directory fails with WAL_ERR_LOCKED naming it and the holder's pid, and succeeds once the first is closed", async () => {
    const { fs, root } = await setup();
    const dir = join(root, "node");
    const first = await openRaftStorage(dir, { fs });
    await first.append(entries(1, 3, 1));
    const refused = openRaftStorage(dir, { fs });
    await expect(refused).rejects.toMatchObject({ code: "WAL_ERR_LOCKED" });
    await expect(refused).rejects.toThrow(`data directory ${dir} is in use by this process (pid ${process.pid}), which has it open already`);
    // The refused open wrote nothing: the first one still works.
    await first.append(entries(4, 4, 1));
    await first.close();
    const second = await open(dir, fs);
    expect(second.lastIndex()).toBe(4);
  });

  it("directoryLockHolder names the holder while a storage is open, and nobody before or after", async () => {
    const { fs, root } = await setup();
    const dir = join(root, "node");
    await fs.ensureDirectory(dir);
    expect(await fs.directoryLockHolder(dir)).toBeUndefined();
    const storage = await openRaftStorage(dir, { fs });
    expect(await fs.directoryLockHolder(dir)).toEqual({ pid: process.pid });
    await storage.close();
    expect(await fs.directoryLockHolder(dir)).toBeUndefined();
    await open(dir, fs); // and it can be taken again
  });

  it("an open that fails after taking the lock lets it go (a damaged hard state fails the same way twice)", async () => {
    const { fs, root } = await setup();
    const dir = join(root, "node");
    const storage = await openRaftStorage(dir, { fs });
    await storage.append(entries(1, 2, 1));
    await storage.saveHardState({ term: 1, vote: 1, commit: 1 });
    await storage.close();
    const file = await fs.open(join(dir, HARD_STATE_DIRECTORY_NAME, HARD_STATE_FILE_NAME));
    await file.write(new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 8);
    await file.sync();
    await file.close();
    await expect(openRaftStorage(dir, { fs })).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
    await expect(openRaftStorage(dir, { fs })).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
    expect(await fs.directoryLockHolder(dir)).toBeUndefined();
  });

  it("a released lock's second release does not free a later holder's lock", async () => {
    const { fs, root } = await setup();
    await fs.ensureDirectory(root);
    const first = await fs.lockDirectory(root);
    await first.release();
    const second = await fs.lockDirectory(root);
    await first.release();
    await expect(fs.lockDirectory(root)).rejects.toMatchObject({ code: "WAL_ERR_LOCKED" });
    await second.release();
  });
});

describe("NodeFileSystem's lock file", () => {
  it("holds the holder's pid while locked; asking who holds a never-locked directory creates nothing", async () => {
    const fs = new NodeFileSystem();
    const root = await nodeRoot();
    expect(await fs.directoryLockHolder(root)).toBeUndefined();
    expect(existsSync(join(root, LOCK_FILE_NAME))).toBe(false);
    const lock = await fs.lockDirectory(root);
    expect(readFileSync(join(root, LOCK_FILE_NAME), "utf8")).toBe(`${process.pid}\n`);
    await lock.release();
    expect(existsSync(join(root, LOCK_FILE_NAME))).toBe(true); // never removed: see directory-lock.ts
  });

  it("a missing directory is an ENOENT, not a lock", async () => {
    const fs = new NodeFileSystem();
    await expect(fs.lockDirectory(join(await nodeRoot(), "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("MemoryFileSystem's lock", () => {
  it("is dropped by crash(), as the kernel drops a dead process's lock; the dead holder's release then frees nothing", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/data");
    const dead = await fs.lockDirectory("/data");
    fs.crash();
    expect(await fs.directoryLockHolder("/data")).toBeUndefined();
    const live = await fs.lockDirectory("/data");
    await dead.release();
    expect(await fs.directoryLockHolder("/data")).toEqual({ pid: process.pid });
    await live.release();
  });

  it("a missing directory is an ENOENT, not a lock", async () => {
    await expect(new MemoryFileSystem().lockDirectory("/missing")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
