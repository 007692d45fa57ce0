/**
 * PowerLossFileSystem on the real disk: what a "crash" (dropping the instance without
 * sync) leaves is exactly what was synced; reads before the crash see everything.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { PowerLossFileSystem } from "../../src/torture/node-hooks/power-loss-file-system.js";
import { HardStateFile } from "../../storage/hard-state.js";
import { seededRandom } from "../../src/rng.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftwal-powerloss-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("PowerLossFileSystem", () => {
  it("after a crash a fresh NodeFileSystem sees only synced data", async () => {
    const fs = new PowerLossFileSystem();
    const path = join(dir, "a");
    const file = await fs.open(path, { create: true });
    await file.write(bytes("hello "), 0);
    await file.sync();
    await file.write(bytes("world"), 6);
    // Reads through the wrapper see the unsynced write (the "page cache")...
    expect(text(await fs.readFile(path))).toBe("hello world");
    expect(await file.size()).toBe(11);
    // ...the real file does not: the process dies here, the instance is dropped.
    expect(text(await new NodeFileSystem().readFile(path))).toBe("hello ");
    await file.close();
  });

  it("sync writes pending changes in order, truncates included", async () => {
    const fs = new PowerLossFileSystem();
    const path = join(dir, "b");
    const file = await fs.open(path, { create: true });
    await file.write(bytes("abcdefgh"), 0);
    await file.truncate(3);
    await file.write(bytes("XY"), 5);
    const buffer = new Uint8Array(7);
    expect(file.readSync(buffer, 0, 7, 0)).toBe(7);
    expect([...buffer]).toEqual([...bytes("abc"), 0, 0, ...bytes("XY")]);
    await file.sync();
    expect([...(await readFile(path))]).toEqual([...bytes("abc"), 0, 0, ...bytes("XY")]);
    await file.close();
  });

  it("a second handle on the same path sees the first one's unsynced writes", async () => {
    const fs = new PowerLossFileSystem();
    const path = join(dir, "c");
    const writer = await fs.open(path, { create: true });
    await writer.write(bytes("0123456789"), 0);
    await writer.sync();
    await writer.write(bytes("ab"), 4);
    const reader = await fs.open(path, { readOnly: true });
    const buffer = new Uint8Array(10);
    expect(await reader.read(buffer, 0, 10, 0)).toBe(10);
    expect(text(buffer)).toBe("0123ab6789");
    expect(text(await new NodeFileSystem().readFile(path))).toBe("0123456789");
    await reader.close();
    await writer.close();
  });

  it("a hard state saved through it (write, fsync, rename, fsync dir) is on the real disk", async () => {
    const fs = new PowerLossFileSystem();
    const hardState = await HardStateFile.open(fs, join(dir, "hs"));
    await hardState.save({ term: 3, vote: 2, commit: 7 });
    const reopened = await HardStateFile.open(new NodeFileSystem(), join(dir, "hs"));
    expect(reopened.get()).toEqual({ term: 3, vote: 2, commit: 7 });
  });

  it("tear writes whole changes and a prefix of the next one, without syncing the rest", async () => {
    const fs = new PowerLossFileSystem();
    const path = join(dir, "d");
    const file = await fs.open(path, { create: true });
    await file.write(bytes("AAAA"), 0);
    await file.write(bytes("BBBB"), 4);
    await file.write(bytes("CCCC"), 8);
    const report = fs.tear(seededRandom(42));
    expect(report).toHaveLength(1);
    const onDisk = text(await new NodeFileSystem().readFile(path));
    const { changesKept, bytesOfLastKept } = report[0];
    expect(onDisk).toBe("AAAABBBBCCCC".slice(0, changesKept * 4 + bytesOfLastKept));
    await file.close();
  });

  it("an armed tear strikes at the next sync instead of syncing", async () => {
    const fs = new PowerLossFileSystem();
    const path = join(dir, "e");
    const file = await fs.open(path, { create: true });
    await file.write(bytes("synced"), 0);
    await file.sync();
    await file.write(bytes("-pending"), 6);
    const reports: unknown[] = [];
    fs.armTear(seededRandom(7), (report) => reports.push(report));
    // In a node the callback kills the process; here sync goes on afterwards.
    await file.sync();
    expect(reports).toHaveLength(1);
    await file.close();
  });
});
