import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { Wal, type WalOptions } from "../../storage/wal/index.js";
import type { Entry } from "../../src/proto/schema.js";

const DIR = "/wal";
const SMALL: WalOptions = { segmentSizeBytes: 64 * 1024 };

function entry(index: number, term: number, size = 16): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, type: 0, data };
}
function range(from: number, to: number, term: number, size = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

async function open(fs: MemoryFileSystem, options: WalOptions = {}): Promise<Wal> {
  return Wal.open(DIR, { fs, ...SMALL, ...options });
}

describe("Wal basics", () => {
  it("appends, reads back, and replays after reopen", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    expect([wal.firstIndex(), wal.lastIndex()]).toEqual([1, 0]);
    await wal.append(range(1, 10, 1));
    await wal.append(range(11, 20, 2));
    expect(wal.lastIndex()).toBe(20);
    expect(wal.term(10)).toBe(1);
    expect(wal.term(11)).toBe(2);
    expect(wal.entries(5, 8, Infinity)).toEqual(range(5, 7, 1));
    await wal.close();
    const again = await open(fs);
    expect(again.lastIndex()).toBe(20);
    expect(again.entries(1, 21, Infinity)).toEqual([...range(1, 10, 1), ...range(11, 20, 2)]);
    expect(again.recovery.tornTail).toBeUndefined();
    await again.close();
  });

  it("survives a crash of everything acknowledged", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    for (let i = 1; i <= 500; i += 100) await wal.append(range(i, i + 99, 1, 100));
    await wal.append(range(400, 600, 2, 100));
    await wal.compact(450, 2);
    expect(wal.firstIndex()).toBe(451);
    expect((await wal.listSegmentNames()).length).toBeLessThan(4);
    fs.crash();
    const again = await open(fs);
    expect(again.lastIndex()).toBe(600);
    expect(again.firstIndex()).toBe(451);
    expect(again.compactedTerm()).toBe(2);
    expect(again.entries(590, 601, Infinity)).toEqual(range(590, 600, 2, 100));
    await again.close();
  });
});
