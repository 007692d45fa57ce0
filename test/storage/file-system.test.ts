import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { FileSystem } from "../../storage/fs/file-system.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";

const bytes = (...values: number[]) => new Uint8Array(values);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function nodeRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-fs-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// The same contract, checked against both implementations.
describe.each([
  ["NodeFileSystem", async () => ({ fs: new NodeFileSystem() as FileSystem, root: await nodeRoot() })],
  ["MemoryFileSystem", async () => ({ fs: new MemoryFileSystem() as FileSystem, root: "/data" })],
])("%s", (_name, setup) => {
  it("writes, reads back (async and sync), extends and truncates", async () => {
    const { fs, root } = await setup();
    await fs.ensureDirectory(join(root, "a", "b"));
    expect(await fs.isDirectory(join(root, "a", "b"))).toBe(true);
    const file = await fs.open(join(root, "a", "b", "f"), { create: true, exclusive: true });
    await file.write(bytes(1, 2, 3), 0);
    await file.write(bytes(9), 5);
    expect(await file.size()).toBe(6);
    const buffer = new Uint8Array(6);
    expect(await file.read(buffer, 0, 6, 0)).toBe(6);
    expect(Array.from(buffer)).toEqual([1, 2, 3, 0, 0, 9]);
    const one = new Uint8Array(2);
    expect(file.readSync(one, 0, 2, 5)).toBe(1);
    expect(one[0]).toBe(9);
    await file.truncate(2);
    expect(await file.size()).toBe(2);
    await file.truncate(4);
    expect(Array.from(await fs.readFile(join(root, "a", "b", "f")))).toEqual([1, 2, 0, 0]);
    await file.sync();
    await file.close();
    await expect(fs.open(join(root, "a", "b", "f"), { create: true, exclusive: true })).rejects.toMatchObject({ code: "EEXIST" });
    await expect(fs.open(join(root, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("writeDurable writes at a position (extending the file) and reads back through the same handle", async () => {
    const { fs, root } = await setup();
    await fs.ensureDirectory(root);
    const file = await fs.open(join(root, "d"), { create: true });
    await file.write(bytes(1, 2, 3, 4), 0);
    await file.writeDurable(bytes(8, 9), 2, { callerIdle: false });
    await file.writeDurable(bytes(7), 6, { callerIdle: true });
    const buffer = new Uint8Array(7);
    expect(file.readSync(buffer, 0, 7, 0)).toBe(7);
    expect(Array.from(buffer)).toEqual([1, 2, 8, 9, 0, 0, 7]);
    await file.close();
    expect(Array.from(await fs.readFile(join(root, "d")))).toEqual([1, 2, 8, 9, 0, 0, 7]);
  });

  it("lists, renames over an existing name and removes", async () => {
    const { fs, root } = await setup();
    await fs.ensureDirectory(root);
    for (const name of ["b", "a"]) {
      const f = await fs.open(join(root, name), { create: true });
      await f.write(new TextEncoder().encode(name), 0);
      await f.close();
    }
    expect(await fs.list(root)).toEqual(["a", "b"]);
    await fs.rename(join(root, "a"), join(root, "b"));
    expect(await fs.list(root)).toEqual(["b"]);
    expect(new TextDecoder().decode(await fs.readFile(join(root, "b")))).toBe("a");
    await fs.remove(join(root, "b"));
    await fs.remove(join(root, "never-existed"));
    await fs.syncDirectory(root);
    expect(await fs.list(root)).toEqual([]);
    expect(await fs.exists(join(root, "b"))).toBe(false);
  });
});

describe("MemoryFileSystem crash simulation", () => {
  it("loses unsynced bytes and names whose directory was not synced", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/d");
    const kept = await fs.open("/d/kept", { create: true });
    await kept.write(bytes(1, 2), 0);
    await kept.sync();
    await fs.syncDirectory("/d");
    await kept.write(bytes(3, 4), 2); // never synced
    const lost = await fs.open("/d/lost", { create: true });
    await lost.write(bytes(7), 0);
    await lost.sync(); // data synced, but the name never was
    fs.crash();
    expect(await fs.list("/d")).toEqual(["kept"]);
    expect(Array.from(fs.currentBytes("/d/kept"))).toEqual([1, 2]);
    await expect(kept.size()).rejects.toMatchObject({ code: "EBADF" });
  });

  it("writeDurable makes its bytes durable (a crash keeps them) and fails like a sync", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/d");
    const f = await fs.open("/d/f", { create: true });
    await fs.syncDirectory("/d");
    await f.writeDurable(bytes(1, 2, 3), 0, { callerIdle: true });
    fs.failNextSync("f");
    await expect(f.writeDurable(bytes(4), 3, { callerIdle: true })).rejects.toMatchObject({ code: "EIO" });
    fs.crash();
    expect(Array.from(fs.currentBytes("/d/f"))).toEqual([1, 2, 3]);
  });

  it("a rename is undone by a crash before the directory sync", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/d");
    const f = await fs.open("/d/tmp", { create: true });
    await f.write(bytes(5), 0);
    await f.sync();
    await fs.syncDirectory("/d");
    await fs.rename("/d/tmp", "/d/final");
    fs.crash();
    expect(await fs.list("/d")).toEqual(["tmp"]);
  });

  it("keeps a chosen prefix of unsynced bytes: a torn write", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/d");
    const f = await fs.open("/d/f", { create: true });
    await f.write(bytes(1, 1), 0);
    await f.sync();
    await fs.syncDirectory("/d");
    await f.write(bytes(2, 3, 4, 5), 2);
    fs.crash({ keepUnsyncedBytes: (_path, unsynced) => (expect(unsynced).toBe(4), 3) });
    expect(Array.from(fs.currentBytes("/d/f"))).toEqual([1, 1, 2, 3, 4]);
  });

  it("fails the next sync and the next write on demand, and flips bits", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory("/d");
    const f = await fs.open("/d/seg", { create: true });
    await f.write(bytes(0, 0), 0);
    fs.failNextSync("seg");
    await expect(f.sync()).rejects.toMatchObject({ code: "EIO" });
    expect(fs.durableBytes("/d/seg").length).toBe(0);
    fs.failNextWrite({ bytesWritten: 1 });
    await expect(f.write(bytes(7, 8), 0)).rejects.toMatchObject({ code: "EIO" });
    expect(Array.from(fs.currentBytes("/d/seg"))).toEqual([7, 0]);
    await f.sync();
    fs.flipBit("/d/seg", 1, 3);
    expect(Array.from(fs.durableBytes("/d/seg"))).toEqual([7, 8]);
  });
});

describe("NodeFileSystem durable writes", () => {
  it("blocks for a durable write when its caller is idle and it is within the bound; otherwise uses the thread pool", async () => {
    const root = await nodeRoot();
    const fs = new NodeFileSystem({ blockingDurableWriteBytesMax: 4 });
    const file = await fs.open(join(root, "f"), { create: true });
    const idle = { callerIdle: true };
    const pending = file.writeDurable(bytes(1, 2, 3, 4), 0, idle);
    // Not awaited yet: a blocking write has already put the bytes in the file.
    const seen = new Uint8Array(4);
    expect(file.readSync(seen, 0, 4, 0)).toBe(4);
    expect(Array.from(seen)).toEqual([1, 2, 3, 4]);
    await pending;
    // Past the bound, or a busy caller: through the pool, the same bytes in the end.
    const large = new Uint8Array(70_000).fill(7);
    await file.writeDurable(large, 4, idle);
    await file.writeDurable(bytes(5), 70_004, { callerIdle: false });
    await file.writeDurable(bytes(6), 70_005, { callerIdle: false });
    expect(await file.size()).toBe(70_006);
    const back = new Uint8Array(70_006);
    expect(file.readSync(back, 0, back.length, 0)).toBe(back.length);
    expect(back.subarray(4, 70_004).every((b) => b === 7)).toBe(true);
    expect(Array.from(back.subarray(70_004))).toEqual([5, 6]);
    await file.close();
  });

  it("close waits for a durable write still in the thread pool", async () => {
    const root = await nodeRoot();
    const file = await new NodeFileSystem({ blockingDurableWriteBytesMax: 0 }).open(join(root, "f"), { create: true });
    const data = new Uint8Array(1 << 20).fill(9);
    const writing = file.writeDurable(data, 0, { callerIdle: false });
    await file.close();
    await writing;
    const onDisk = await new NodeFileSystem().readFile(join(root, "f"));
    expect(onDisk.length).toBe(data.length);
    expect(onDisk.every((b) => b === 9)).toBe(true);
  });

  it("a failed durable write rejects (blocking or not), and so does one after close", async () => {
    const root = await nodeRoot();
    for (const blockingDurableWriteBytesMax of [0, 1024]) {
      const file = await new NodeFileSystem({ blockingDurableWriteBytesMax }).open(join(root, `f${blockingDurableWriteBytesMax}`), { create: true });
      // Past ext4's (and most file systems') largest file: write(2) fails with EFBIG.
      const beyond = file.writeDurable(bytes(1), 2 ** 50, { callerIdle: true });
      await expect(beyond).rejects.toMatchObject({ code: expect.stringMatching(/^(EFBIG|EINVAL)$/) });
      await file.close();
      await expect(file.writeDurable(bytes(1), 0, { callerIdle: true })).rejects.toMatchObject({ code: "EBADF" });
    }
  });

  it("refuses a blocking-write limit that is not a whole number of bytes", () => {
    expect(() => new NodeFileSystem({ blockingDurableWriteBytesMax: -1 })).toThrow(RangeError);
    expect(() => new NodeFileSystem({ blockingDurableWriteBytesMax: 1.5 })).toThrow(/whole number/);
  });
});
