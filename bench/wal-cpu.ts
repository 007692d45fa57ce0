/**
 * `npm run bench:wal-cpu`: the WAL's own CPU per entry, without the disk. 256 closed-loop
 * appenders (as wal-targets' 256-appender rows) on a WAL whose file writes complete at once
 * (a turn of the event loop later, nothing written): what is left is the callers' resolving
 * and appending, the encoding and the checksums, which is what bounds the 256 x 1 KiB row
 * against the disk (README, "Other results"). The log compacts as a node's does (every
 * 100,000 entries). Per size, the process's CPU (user + system) per entry in each slice; the
 * table gives the lowest and the median slice: this machine is shared, and a slice can only be
 * slowed by a neighbour, never sped up.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { OpenOptions, StorageFile } from "../storage/fs/file-system.js";
import { NodeFileSystem } from "../storage/fs/node-file-system.js";
import { Wal } from "../storage/wal/wal.js";
import { crc32Implementation } from "../storage/wal/crc.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";
import { median } from "./stats.js";
import { makeEntry } from "./wal-common.js";

const USAGE = `Usage: npm run bench:wal-cpu [-- --slices N] [-- --slice S] [-- --appenders N]
       (node dist/bench/wal-cpu.js [flags])

The WAL's CPU per entry with writes that complete at once (no disk): 128 B, 1 KiB and 16 KiB
entries, compacting every 100,000 entries. Prints a table; writes bench/results/wal-cpu.json.

  --slices N      measured slices per size (default 7), after one of warm-up
  --slice S       seconds per slice (default 1)
  --appenders N   closed-loop appenders (default 256)
  --help          this text
`;
handleUsage(USAGE, ["--slices", "--slice", "--appenders"]);
const SLICES = numberOption(USAGE, "--slices", 7, true);
const SLICE_SECONDS = numberOption(USAGE, "--slice", 1);
const APPENDERS = numberOption(USAGE, "--appenders", 256, true);
const SIZES = [128, 1024, 16384];
const COMPACT_EVERY_ENTRIES = 100_000;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Real files (opened, renamed, truncated), whose data writes and syncs complete a turn later without writing: the disk left out. */
class InstantFileSystem extends NodeFileSystem {
  override async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const file = await super.open(path, options);
    file.write = nextTurn;
    file.sync = nextTurn;
    file.writeDurable = nextTurn;
    return file;
  }
}

interface SliceResult {
  entriesPerSecond: number;
  cpuUsPerEntry: number;
}

/** One slice: APPENDERS appenders for SLICE_SECONDS; the process's CPU per entry appended. */
async function slice(wal: Wal, size: number, state: { next: number; sinceCompaction: number }): Promise<SliceResult> {
  let running = true;
  let appended = 0;
  let compaction: Promise<void> | undefined;
  const appender = async (): Promise<void> => {
    while (running) {
      await wal.append([makeEntry(state.next++, size)]);
      appended++;
      if (++state.sinceCompaction >= COMPACT_EVERY_ENTRIES && !compaction) {
        state.sinceCompaction = 0;
        compaction = wal.compact(wal.lastIndex(), 1).finally(() => (compaction = undefined));
      }
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  const appenders = Array.from({ length: APPENDERS }, appender);
  await sleep(SLICE_SECONDS * 1000);
  running = false;
  await Promise.all(appenders);
  await compaction;
  const used = process.cpuUsage(cpu);
  return { entriesPerSecond: appended / ((performance.now() - started) / 1000), cpuUsPerEntry: (used.user + used.system) / appended };
}

async function measure(size: number): Promise<{ size: number; slices: SliceResult[] }> {
  const dir = mkdtempSync(join(tmpdir(), "raftwal-wal-cpu-"));
  try {
    const wal = await Wal.open(dir, { fs: new InstantFileSystem() });
    const state = { next: 1, sinceCompaction: 0 };
    await slice(wal, size, state);
    const slices: SliceResult[] = [];
    for (let i = 0; i < SLICES; i++) slices.push(await slice(wal, size, state));
    await wal.close();
    return { size, slices };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`raftwal WAL CPU benchmark: ${APPENDERS} appenders, ${SLICES} slices of ${SLICE_SECONDS} s per size, writes that complete at once; crc32: ${crc32Implementation}; node ${process.version}`);
const results = [];
for (const size of SIZES) results.push(await measure(size));
const cpu = (r: { slices: SliceResult[] }) => r.slices.map((s) => s.cpuUsPerEntry);
console.table(
  results.map((r) => ({
    entry: `${r.size.toLocaleString("en-US")} B`,
    "cpu µs/entry (lowest slice)": Math.min(...cpu(r)).toFixed(3),
    "cpu µs/entry (median slice)": median(cpu(r)).toFixed(3),
    "entries/s (median slice)": Math.round(median(r.slices.map((s) => s.entriesPerSecond))).toLocaleString("en-US"),
  })),
);
console.log(`results written to ${writeResults("wal-cpu", { date: new Date().toISOString(), appenders: APPENDERS, sliceSeconds: SLICE_SECONDS, crc32: crc32Implementation, results })}`);
