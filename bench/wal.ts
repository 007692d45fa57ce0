/**
 * WAL benchmark (`npm run bench:wal`, `--quick` for a short run). Everything runs in one
 * process on the same disk (a directory under os.tmpdir(), removed at the end):
 *
 *  (a) the disk's ceiling: a plain loop of write + fdatasync of one record, appending to
 *      a growing file and overwriting a preallocated (zero-written) file;
 *  (b) WAL append throughput and latency for 128 B / 1 KiB / 16 KiB entries with 1, 16
 *      and 256 concurrent appenders, with ratios against (a) for the same record size;
 *  (c) open/recovery speed of a ~1 GiB WAL of 1 KiB entries;
 *  (d) memory of an opened 10-million-entry log (index bytes per entry);
 *  (e) the performance targets (bench/wal-targets.ts): the default configuration against
 *      the disk's ceiling in alternating slices, as the log only grows and compacting as a
 *      node does, with where the time goes.
 *
 * Prints a table and writes bench/results/wal.json. Figures on a shared machine are
 * noisy: compare the ratios, which are measured side by side in the same run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Entry } from "../src/proto/schema.js";
import type { OpenOptions, StorageFile } from "../storage/fs/file-system.js";
import { NodeFileSystem } from "../storage/fs/node-file-system.js";
import { crc32Implementation } from "../storage/wal/crc.js";
import { COMMIT_RECORD_BYTES } from "../storage/wal/format.js";
import { Wal, type Preallocation } from "../storage/wal/index.js";
import { writeResults } from "./results.js";
import { median, percentile } from "./stats.js";
import { handleUsage } from "./usage.js";
import { entryRecordBytes, makeEntry } from "./wal-common.js";
import { runTargets } from "./wal-targets.js";

handleUsage(
  `Usage: npm run bench:wal [-- --quick]    (node --expose-gc dist/bench/wal.js [--quick])

The disk's ceiling (write + fdatasync loops), WAL append throughput and latency (128 B,
1 KiB, 16 KiB entries; 1, 16, 256 appenders), recovery of a 1 GiB WAL, and index memory
of a 10-million-entry log. Prints a table; writes bench/results/wal.json.

  --quick   a short run (smaller cases, about a minute)
  --help    this text
`,
  ["--quick"],
);

const quick = process.argv.includes("--quick");
const SECONDS_PER_CASE = quick ? 0.6 : 3;
/** Multi-appender cases: rounds of (plain batch ceiling, WAL) slices. */
const MULTI_ROUNDS = quick ? 1 : 3;
/** Single-appender comparison: rounds of (plain append, plain preallocated, WAL) slices. */
const ROUNDS = quick ? 2 : 10;
const SLICE_SECONDS = quick ? 0.3 : 0.4;
const RECOVERY_BYTES = quick ? 128 * 1024 * 1024 : 1024 * 1024 * 1024;
const MEMORY_ENTRIES = quick ? 1_000_000 : 10_000_000;
const ENTRY_SIZES = [128, 1024, 16 * 1024];
const CONCURRENCY = [1, 16, 256];

/**
 * The real disk, with the time spent inside segment writes and fdatasyncs measured (the
 * union of in-flight intervals), so the report can show how much of the WAL's wall time
 * is the disk's and how much is the engine's own work.
 */
class TimedFileSystem extends NodeFileSystem {
  private inFlight = 0;
  private since = 0;
  busyMs = 0;

  private enter(): void {
    if (this.inFlight++ === 0) this.since = performance.now();
  }
  private leave(): void {
    if (--this.inFlight === 0) this.busyMs += performance.now() - this.since;
  }
  override async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const file = await super.open(path, options);
    if (!path.endsWith(".wal")) return file;
    const timed = (operation: () => Promise<void>) => async (): Promise<void> => {
      this.enter();
      try {
        await operation();
      } finally {
        this.leave();
      }
    };
    const write = file.write.bind(file);
    const sync = file.sync.bind(file);
    const writeDurable = file.writeDurable.bind(file);
    file.write = (data, position) => timed(() => write(data, position))();
    file.sync = timed(sync);
    file.writeDurable = (data, position, hint) => timed(() => writeDurable(data, position, hint))();
    return file;
  }
}

const fs = new TimedFileSystem();
const root = mkdtempSync(join(tmpdir(), "raftwal-bench-wal-"));
let caseNumber = 0;
const freshDir = (): string => join(root, `case-${++caseNumber}`);

// ---- (a) plain loop ----------------------------------------------------------------------

interface PlainResult {
  recordBytes: number;
  mode: "append" | "preallocated";
  opsPerSecond: number;
  p50Micros: number;
  p99Micros: number;
}

/** A plain write + fdatasync loop that can run in slices (interleaved with the WAL runs). */
class PlainLoop {
  private file!: StorageFile;
  private position = 0;
  private readonly latencies: number[] = [];
  private seconds = 0;
  private readonly record: Uint8Array;
  private static readonly CAPACITY_BYTES = 256 * 1024 * 1024;

  constructor(
    readonly recordBytes: number,
    readonly mode: "append" | "preallocated",
  ) {
    this.record = new Uint8Array(recordBytes).fill(0x5a);
  }

  private dir = "";

  async setUp(): Promise<void> {
    this.dir = freshDir();
    await fs.ensureDirectory(this.dir);
    this.file = await fs.open(join(this.dir, "plain"), { create: true });
    if (this.mode === "preallocated") {
      const zeros = new Uint8Array(1024 * 1024);
      for (let at = 0; at < PlainLoop.CAPACITY_BYTES; at += zeros.length) await this.file.write(zeros, at);
      await this.file.sync();
    }
  }

  /** Runs for `seconds`; returns this slice's ops/s. */
  async run(seconds: number): Promise<number> {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const countBefore = this.latencies.length;
    while (performance.now() < deadline) {
      if (this.position + this.recordBytes > PlainLoop.CAPACITY_BYTES) this.position = 0;
      const t0 = performance.now();
      await this.file.write(this.record, this.position);
      await this.file.sync();
      this.latencies.push((performance.now() - t0) * 1000);
      this.position += this.recordBytes;
    }
    const elapsed = (performance.now() - started) / 1000;
    this.seconds += elapsed;
    return (this.latencies.length - countBefore) / elapsed;
  }

  async tearDown(): Promise<PlainResult> {
    await this.file.close();
    rmSync(this.dir, { recursive: true, force: true });
    const sorted = Float64Array.from(this.latencies).sort();
    return {
      recordBytes: this.recordBytes,
      mode: this.mode,
      opsPerSecond: this.latencies.length / this.seconds,
      p50Micros: percentile(sorted, 50),
      p99Micros: percentile(sorted, 99),
    };
  }
}

/** A WAL with `appenders` closed-loop appenders, runnable in slices. */
class WalLoad {
  private wal!: Wal;
  private next = 1;
  private readonly latencies: number[] = [];
  private seconds = 0;
  private appended = 0;
  private ioSeconds = 0;

  constructor(
    readonly entryBytes: number,
    readonly appenders: number,
    readonly preallocation: Preallocation = "auto",
  ) {}

  private dir = "";

  async setUp(): Promise<void> {
    this.dir = freshDir();
    this.wal = await Wal.open(this.dir, { fs, preallocation: this.preallocation });
    // Warm up briefly (JIT, first batches).
    const warm = performance.now() + 200;
    while (performance.now() < warm) await this.wal.append([makeEntry(this.next++, this.entryBytes)]);
  }

  /** Runs for `seconds`; returns this slice's entries/s. */
  async run(seconds: number): Promise<number> {
    let running = true;
    const appendedBefore = this.appended;
    const worker = async (): Promise<void> => {
      while (running) {
        const entry = makeEntry(this.next++, this.entryBytes);
        const t0 = performance.now();
        await this.wal.append([entry]);
        this.latencies.push((performance.now() - t0) * 1000);
        this.appended++;
      }
    };
    const started = performance.now();
    const busyBefore = fs.busyMs;
    const workers = Array.from({ length: this.appenders }, worker);
    await sleep(seconds * 1000);
    running = false;
    await Promise.all(workers);
    const elapsed = (performance.now() - started) / 1000;
    this.seconds += elapsed;
    this.ioSeconds += (fs.busyMs - busyBefore) / 1000;
    return (this.appended - appendedBefore) / elapsed;
  }

  async tearDown(plain: PlainResult[]): Promise<AppendResult> {
    await this.wal.close();
    rmSync(this.dir, { recursive: true, force: true });
    const sorted = Float64Array.from(this.latencies).sort();
    const record = entryRecordBytes(this.entryBytes);
    const rate = this.appended / this.seconds;
    const plainAppend = plain.find((p) => p.recordBytes === record && p.mode === "append")!;
    const plainPre = plain.find((p) => p.recordBytes === record && p.mode === "preallocated")!;
    return {
      entryBytes: this.entryBytes,
      recordBytes: record,
      appenders: this.appenders,
      entriesPerSecond: rate,
      megabytesPerSecond: (rate * this.entryBytes) / 1e6,
      p50Micros: percentile(sorted, 50),
      p99Micros: percentile(sorted, 99),
      ratioToPlainAppend: rate / plainAppend.opsPerSecond,
      ratioToPlainPreallocated: rate / plainPre.opsPerSecond,
      ioShare: this.ioSeconds / this.seconds,
      preallocation: this.preallocation,
      ceilingEntriesPerSecond: NaN,
      ratioToCeiling: NaN,
    };
  }
}

// ---- (b) WAL appends -----------------------------------------------------------------------

interface AppendResult {
  entryBytes: number;
  recordBytes: number;
  appenders: number;
  entriesPerSecond: number;
  megabytesPerSecond: number;
  p50Micros: number;
  p99Micros: number;
  ratioToPlainAppend: number;
  ratioToPlainPreallocated: number;
  /** Share of wall time spent inside segment write + fdatasync calls (the rest is the engine and the event loop). */
  ioShare: number;
  preallocation: Preallocation;
  /**
   * What the disk allows this case, measured interleaved with it: for 1 appender the plain
   * preallocated loop; for N appenders N x the rate of a plain preallocated loop writing
   * one batch (N records + a commit) per fdatasync.
   */
  ceilingEntriesPerSecond: number;
  /** Ours / ceiling: for 1 appender the median of the per-round ratios, else the aggregate. */
  ratioToCeiling: number;
  /** 1 appender: median of the per-round ratios to the plain appending loop. */
  medianRatioToPlainAppend?: number;
}

// ---- (c), (d) building a big log, reopening it ----------------------------------------------

async function buildLog(dir: string, entries: number, entryBytes: number): Promise<number> {
  const wal = await Wal.open(dir, { fs });
  const perCall = Math.max(1, Math.floor((4 * 1024 * 1024) / (entryBytes + 48)));
  const pending: Promise<void>[] = [];
  for (let index = 1; index <= entries; ) {
    const count = Math.min(perCall, entries - index + 1);
    const batch: Entry[] = new Array(count);
    for (let k = 0; k < count; k++) batch[k] = makeEntry(index + k, entryBytes);
    pending.push(wal.append(batch));
    index += count;
    if (pending.length >= 4) await pending.shift();
  }
  await Promise.all(pending);
  const last = wal.lastIndex();
  await wal.close();
  return last;
}

interface RecoveryResult {
  entries: number;
  entryBytes: number;
  bytes: number;
  openMs: number;
  megabytesPerSecond: number;
  buildSeconds: number;
}

async function recoverySpeed(): Promise<RecoveryResult> {
  const dir = freshDir();
  const entryBytes = 1024;
  const entries = Math.floor(RECOVERY_BYTES / entryRecordBytes(entryBytes));
  const t0 = performance.now();
  await buildLog(dir, entries, entryBytes);
  const buildSeconds = (performance.now() - t0) / 1000;
  // Page cache is warm (the log was just written): this measures the engine, not the disk.
  const started = performance.now();
  const wal = await Wal.open(dir, { fs });
  const openMs = performance.now() - started;
  const bytes = wal.recovery.bytesReplayed;
  if (wal.lastIndex() !== entries) throw new Error(`recovered ${wal.lastIndex()} of ${entries}`);
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
  return { entries, entryBytes, bytes, openMs, megabytesPerSecond: bytes / 1e6 / (openMs / 1000), buildSeconds };
}

interface MemoryResult {
  entries: number;
  logBytes: number;
  openMs: number;
  recoveryMegabytesPerSecond: number;
  indexBytesPerEntry: number;
  heapAndBuffersBytesPerEntry: number;
  rssDeltaBytesPerEntry: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function memoryNow(): { heapAndBuffers: number; rss: number } {
  gc();
  gc();
  const usage = process.memoryUsage();
  return { heapAndBuffers: usage.heapUsed + usage.arrayBuffers, rss: usage.rss };
}

async function memoryOfBigLog(): Promise<MemoryResult> {
  const dir = freshDir();
  await buildLog(dir, MEMORY_ENTRIES, 8);
  const before = memoryNow();
  const started = performance.now();
  const wal = await Wal.open(dir, { fs });
  const openMs = performance.now() - started;
  const after = memoryNow();
  if (wal.lastIndex() !== MEMORY_ENTRIES) throw new Error(`recovered ${wal.lastIndex()} of ${MEMORY_ENTRIES}`);
  // Spot-check reads from disk across the log.
  for (const index of [1, Math.floor(MEMORY_ENTRIES / 2), MEMORY_ENTRIES]) {
    if (wal.entries(index, index + 1, Infinity)[0].index !== index) throw new Error(`bad read at ${index}`);
  }
  const result: MemoryResult = {
    entries: MEMORY_ENTRIES,
    logBytes: wal.recovery.bytesReplayed,
    openMs,
    recoveryMegabytesPerSecond: wal.recovery.bytesReplayed / 1e6 / (openMs / 1000),
    indexBytesPerEntry: wal.indexMemoryBytes() / MEMORY_ENTRIES,
    heapAndBuffersBytesPerEntry: (after.heapAndBuffers - before.heapAndBuffers) / MEMORY_ENTRIES,
    rssDeltaBytesPerEntry: (after.rss - before.rss) / MEMORY_ENTRIES,
  };
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

// ---- report --------------------------------------------------------------------------------

function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => "| " + cells.map((cell, c) => cell.padStart(widths[c])).join(" | ") + " |";
  return [line(headers), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const wallStart = performance.now();
  console.log(`raftwal WAL benchmark${quick ? " (--quick)" : ""}; dir ${root}; crc32: ${crc32Implementation}; node ${process.version}`);

  const { plain, single } = await singleAppenderRounds();
  console.log("\n(a) plain loop: write + fdatasync of one record (interleaved with the 1-appender WAL runs)");
  console.log(
    table(
      ["record B", "mode", "ops/s", "p50 us", "p99 us"],
      plain.map((p) => [fmt(p.recordBytes), p.mode, fmt(p.opsPerSecond), fmt(p.p50Micros), fmt(p.p99Micros)]),
    ),
  );

  const appends = await appendCases(plain, single);
  printAppends(appends);

  const recovery = await recoverySpeed();
  console.log(`\n(c) recovery: ${fmt(recovery.bytes / 2 ** 20)} MiB, ${fmt(recovery.entries)} entries of ${recovery.entryBytes} B: open ${fmt(recovery.openMs)} ms = ${fmt(recovery.megabytesPerSecond)} MB/s (warm page cache; build ${fmt(recovery.buildSeconds, 1)} s)`);

  const memory = await memoryOfBigLog();
  console.log(
    `\n(d) ${fmt(memory.entries)}-entry log (${fmt(memory.logBytes / 2 ** 20)} MiB): open ${fmt(memory.openMs)} ms (${fmt(memory.recoveryMegabytesPerSecond)} MB/s); ` +
      `index ${fmt(memory.indexBytesPerEntry, 2)} B/entry; heap+buffers growth ${fmt(memory.heapAndBuffersBytesPerEntry, 2)} B/entry; rss growth ${fmt(memory.rssDeltaBytesPerEntry, 2)} B/entry`,
  );

  const targetRows = await runTargets(quick);
  const targets = { ...targetRows.verdicts, ...targetsMet(recovery, memory) };
  console.log("\ntargets:");
  for (const [name, met] of Object.entries(targets)) console.log(`  ${met ? "met    " : "MISSED "} ${name}`);
  const wallSeconds = (performance.now() - wallStart) / 1000;
  console.log(`\ntotal ${fmt(wallSeconds, 1)} s`);

  const out = {
    date: new Date().toISOString(),
    quick,
    node: process.version,
    crc32: crc32Implementation,
    plain,
    appends,
    recovery,
    memory,
    targetRows: targetRows.results,
    targets,
    wallSeconds,
  };
  console.log(`wrote ${writeResults("wal", out)}`);
}

/** A 1-appender WAL run, kept open: its rounds' ratios against the plain loops of the same record size. */
interface SingleAppenderRun {
  size: number;
  load: WalLoad;
  ratiosAppend: number[];
  ratiosPre: number[];
}

/**
 * (a) and the single-appender WAL runs, interleaved in rounds so that both see the same
 * disk conditions (this machine is shared and noisy).
 */
async function singleAppenderRounds(): Promise<{ plain: PlainResult[]; single: SingleAppenderRun[] }> {
  const plain: PlainResult[] = [];
  const single: SingleAppenderRun[] = [];
  for (const size of ENTRY_SIZES) {
    const bytes = entryRecordBytes(size);
    const loops = [new PlainLoop(bytes, "append"), new PlainLoop(bytes, "preallocated")];
    const load = new WalLoad(size, 1);
    for (const loop of loops) await loop.setUp();
    await load.setUp();
    const ratiosAppend: number[] = [];
    const ratiosPre: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const plainAppendRate = await loops[0].run(SLICE_SECONDS);
      const plainPreRate = await loops[1].run(SLICE_SECONDS);
      const walRate = await load.run(SLICE_SECONDS);
      ratiosAppend.push(walRate / plainAppendRate);
      ratiosPre.push(walRate / plainPreRate);
    }
    for (const loop of loops) plain.push(await loop.tearDown());
    single.push({ size, load, ratiosAppend, ratiosPre });
  }
  return { plain, single };
}

/**
 * (b) Every case with the default preallocation, and the large-batch cases again
 * with sparse preallocation, side by side. The 1-appender cases close the runs of (a).
 */
async function appendCases(plain: PlainResult[], single: SingleAppenderRun[]): Promise<AppendResult[]> {
  const appends: AppendResult[] = [];
  const multiCases: Array<[number, number, Preallocation]> = [];
  for (const size of ENTRY_SIZES) for (const appenders of CONCURRENCY) multiCases.push([size, appenders, "auto"]);
  multiCases.push([1024, 256, "sparse"], [16 * 1024, 256, "sparse"]);
  for (const [size, appenders, preallocation] of multiCases) {
    if (appenders === 1) {
      const run = single.find((s) => s.size === size)!;
      const result = await run.load.tearDown(plain);
      result.ceilingEntriesPerSecond = plain.find((p) => p.recordBytes === result.recordBytes && p.mode === "preallocated")!.opsPerSecond;
      result.ratioToCeiling = median(run.ratiosPre);
      result.medianRatioToPlainAppend = median(run.ratiosAppend);
      appends.push(result);
      continue;
    }
    appends.push(await multiAppenderCase(plain, size, appenders, preallocation));
  }
  return appends;
}

/** One N-appender case, interleaved in rounds with its ceiling: one batch of N records per fdatasync. */
async function multiAppenderCase(plain: PlainResult[], size: number, appenders: number, preallocation: Preallocation): Promise<AppendResult> {
  const batchBytes = appenders * entryRecordBytes(size) + COMMIT_RECORD_BYTES;
  const ceiling = new PlainLoop(batchBytes, "preallocated");
  await ceiling.setUp();
  const load = new WalLoad(size, appenders, preallocation);
  await load.setUp();
  for (let round = 0; round < MULTI_ROUNDS; round++) {
    await ceiling.run(SECONDS_PER_CASE / MULTI_ROUNDS / 2);
    await load.run(SECONDS_PER_CASE / MULTI_ROUNDS);
  }
  const ceilingResult = await ceiling.tearDown();
  const result = await load.tearDown(plain);
  result.ceilingEntriesPerSecond = appenders * ceilingResult.opsPerSecond;
  result.ratioToCeiling = result.entriesPerSecond / result.ceilingEntriesPerSecond;
  return result;
}

function printAppends(appends: AppendResult[]): void {
  console.log("\n(b) WAL append (each append durable before it resolves)");
  console.log(
    table(
      ["entry B", "appenders", "prealloc", "entries/s", "MB/s", "p50 us", "p99 us", "/plain append", "/plain prealloc", "ceiling/s", "/ceiling", "in write+sync"],
      appends.map((a) => [
        fmt(a.entryBytes),
        fmt(a.appenders),
        a.preallocation,
        fmt(a.entriesPerSecond),
        fmt(a.megabytesPerSecond, 1),
        fmt(a.p50Micros),
        fmt(a.p99Micros),
        fmt(a.medianRatioToPlainAppend ?? a.ratioToPlainAppend, 2) + "x",
        fmt(a.appenders === 1 ? a.ratioToCeiling : a.ratioToPlainPreallocated, 2) + "x",
        fmt(a.ceilingEntriesPerSecond),
        fmt(a.ratioToCeiling, 2) + "x",
        fmt(a.ioShare * 100) + "%",
      ]),
    ),
  );
  console.log(
    "1 appender: ratios are medians of per-round ratios (rounds interleave plain and WAL slices). " +
      "ceiling for N appenders: N x ops/s of a plain preallocated loop writing one N-record batch per fdatasync, interleaved with the run.",
  );
}

/** The targets besides the issue-11 rows (which runTargets judges). */
function targetsMet(recovery: RecoveryResult, memory: MemoryResult): Record<string, boolean> {
  return {
    "recovery >= 500 MB/s": recovery.megabytesPerSecond >= 500,
    "index <= 16 B/entry": memory.indexBytesPerEntry <= 16 && memory.heapAndBuffersBytesPerEntry <= 16,
  };
}

try {
  await main();
} finally {
  rmSync(root, { recursive: true, force: true });
}
