/**
 * The WAL's performance targets (issue 11), measured in pairs so that the WAL and the
 * disk's ceiling see the same disk and CPU conditions on a shared, noisy machine:
 *
 *   - 256 appenders x 1 KiB entries:  >= 0.75x the batch ceiling;
 *   - 256 appenders x 16 KiB entries: >= 0.75x the batch ceiling, p99 latency <= 20 ms;
 *   - 1 appender (128 B, 1 KiB, 16 KiB): >= 0.95x the plain preallocated loop.
 *
 * The ceiling of a row is a plain loop over a preallocated (zero-written) file doing one
 * write + fdatasync per batch: one record for 1 appender; N records and a commit record for
 * N appenders. Rounds alternate short slices: the ceiling, then each WAL variant (N
 * closed-loop appenders); a variant's ratio is the median over the rounds of its slice's
 * rate over the ceiling slice's rate in the same round. A WAL slice ends once its
 * background I/O (preparing a segment) is done, so that work is charged to it. Rates on
 * this shared machine vary several-fold from one second to the next: short slices in many
 * rounds, and the median, keep that out of the ratios.
 *
 * Where the time goes is reported per variant: entries per batch, segment write and sync
 * calls per batch and their mean durations (as seen from the event loop: thread-pool round
 * trip included), bytes written to prepare segments per byte of records, the share of the
 * cycles' time with a segment write or sync in flight, and process CPU per entry.
 *
 * A `steady` variant compacts the whole log as a node with the default snapshot policy does
 * (steady state: compacted segments are recycled); the others only grow the log.
 *
 * Run alone: `npm run build && node dist/bench/wal-targets.js [--rounds N] [--slice S]
 * [--rows 1k256,16k256,128x1,1kx1,16kx1] [--no-default] [--fresh-ceiling] [--json results.json]
 * [--variant name='{"preallocation":"sparse","steady":true}']` (WalOptions, plus `steady`).
 * `npm run bench:wal` runs it as part of the full benchmark.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { OpenOptions, StorageFile } from "../storage/fs/file-system.js";
import { NodeFileSystem } from "../storage/fs/node-file-system.js";
import { Wal, type WalOptions } from "../storage/wal/index.js";
import { COMMIT_RECORD_BYTES, RecordType } from "../storage/wal/format.js";
import { median, percentile } from "./stats.js";
import { entryRecordBytes, makeEntry } from "./wal-common.js";
import { handleUsage, numberOption, refuseArguments, stringOption } from "./usage.js";

/** A row of the targets: entries of `entryBytes` data bytes from `appenders` closed-loop appenders. */
export interface TargetRow {
  name: string;
  entryBytes: number;
  appenders: number;
  /** Least ratio to the ceiling (median of the rounds). */
  ratioMin: number;
  /** Largest p99 latency allowed, in microseconds (Infinity: none). */
  p99MicrosMax: number;
}

export const TARGET_ROWS: TargetRow[] = [
  { name: "1k256", entryBytes: 1024, appenders: 256, ratioMin: 0.75, p99MicrosMax: Infinity },
  { name: "16k256", entryBytes: 16 * 1024, appenders: 256, ratioMin: 0.75, p99MicrosMax: 20_000 },
  { name: "128x1", entryBytes: 128, appenders: 1, ratioMin: 0.95, p99MicrosMax: Infinity },
  { name: "1kx1", entryBytes: 1024, appenders: 1, ratioMin: 0.95, p99MicrosMax: Infinity },
  { name: "16kx1", entryBytes: 16 * 1024, appenders: 1, ratioMin: 0.95, p99MicrosMax: Infinity },
];

/** Segment I/O seen through the file system: calls, bytes, time, and how much of the wall time had any in flight. */
export interface IoCounters {
  batchWrites: number;
  batchBytes: number;
  batchWriteMs: number;
  /** Writes that are not batches: zero-filling (preallocation, torn-tail cuts) and segment headers. */
  otherWrites: number;
  otherBytes: number;
  syncs: number;
  syncMs: number;
  /** Union of the intervals with a segment write or sync in flight. */
  busyMs: number;
  /** Union of the intervals with two or more in flight (the WAL's batches overlapping one another or a sync). */
  overlapMs: number;
}

function zeroCounters(): IoCounters {
  return { batchWrites: 0, batchBytes: 0, batchWriteMs: 0, otherWrites: 0, otherBytes: 0, syncs: 0, syncMs: 0, busyMs: 0, overlapMs: 0 };
}

function subtract(after: IoCounters, before: IoCounters): IoCounters {
  const out = zeroCounters();
  for (const key of Object.keys(out) as Array<keyof IoCounters>) out[key] = after[key] - before[key];
  return out;
}

/** The real disk, counting what happens to segment files (`*.wal`). */
export class CountingFileSystem extends NodeFileSystem {
  readonly io = zeroCounters();
  private inFlight = 0;
  private since = 0;
  private overlapSince = 0;

  private operationsStarted = 0;
  /** Completion times of batch writes not yet followed by the start of another batch write (oldest first). */
  private batchesDoneAt: number[] = [];
  private gapsRecorded = false;
  /**
   * Per batch write: milliseconds from the completion of an earlier batch write to its start
   * (completions and starts paired in order), while recording. The WAL's time between a
   * batch becoming durable and its callers' next batch being written: resolving them, their
   * next calls, encoding, handing the write over.
   */
  readonly batchGapsMs: number[] = [];

  /** Starts pairing completions with starts afresh (a slice of load begins); `record`: keep the gaps. */
  openGapWindow(record: boolean): void {
    this.batchesDoneAt = [];
    this.gapsRecorded = record;
  }

  /**
   * Resolves once no segment I/O has been in flight for `quietMs` (at most `timeoutMs`), so
   * that a variant's background work (preparing the next segment) is charged to its own slice
   * instead of spilling into the next one. Returns the quiet milliseconds waited at the end.
   */
  async settle(quietMs = 10, timeoutMs = 10_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const startedBefore = this.operationsStarted;
      if (this.inFlight === 0) {
        await sleep(quietMs);
        if (this.inFlight === 0 && this.operationsStarted === startedBefore) return quietMs;
      } else {
        await sleep(1);
      }
    }
    return 0;
  }

  private async timed(operation: () => Promise<void>, account: (ms: number) => void): Promise<void> {
    const started = performance.now();
    this.operationsStarted++;
    if (this.inFlight === 0) this.since = started;
    if (this.inFlight === 1) this.overlapSince = started;
    this.inFlight++;
    try {
      await operation();
    } finally {
      const now = performance.now();
      this.inFlight--;
      if (this.inFlight === 1) this.io.overlapMs += now - this.overlapSince;
      if (this.inFlight === 0) this.io.busyMs += now - this.since;
      account(now - started);
    }
  }

  override async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const file = await super.open(path, options);
    if (!path.endsWith(".wal")) return file;
    const write = file.write.bind(file);
    const sync = file.sync.bind(file);
    const writeDurable = file.writeDurable.bind(file);
    // Both write paths are counted alike: a batch (the WAL's are durable writes) or other
    // bytes (zero-filling, headers). A durable write is a write and a sync in one call: no sync counted.
    file.write = (data, position) => this.timedWrite(data, () => write(data, position));
    file.writeDurable = (data, position, hint) => this.timedWrite(data, () => writeDurable(data, position, hint));
    file.sync = () =>
      this.timed(sync, (ms) => {
        this.io.syncs++;
        this.io.syncMs += ms;
      });
    return file;
  }

  private timedWrite(data: Uint8Array, write: () => Promise<void>): Promise<void> {
    const isBatch = isBatchWrite(data);
    if (isBatch) this.batchStarting();
    return this.timed(write, (ms) => {
      if (isBatch) {
        this.io.batchWrites++;
        this.io.batchBytes += data.length;
        this.io.batchWriteMs += ms;
        this.batchesDoneAt.push(performance.now());
      } else {
        this.io.otherWrites++;
        this.io.otherBytes += data.length;
      }
    });
  }

  private batchStarting(): void {
    const doneAt = this.batchesDoneAt.shift();
    if (doneAt !== undefined && this.gapsRecorded) this.batchGapsMs.push(performance.now() - doneAt);
  }
}

/** A batch ends with a COMMIT record; zero-filling and headers do not start with a record type. */
function isBatchWrite(data: Uint8Array): boolean {
  return data.length >= COMMIT_RECORD_BYTES && data[data.length - COMMIT_RECORD_BYTES] === RecordType.COMMIT;
}

/** Bytes one batch of `appenders` entries occupies in the ceiling loop (no commit record for a single record). */
function ceilingBatchBytes(row: TargetRow): number {
  return row.appenders === 1 ? entryRecordBytes(row.entryBytes) : row.appenders * entryRecordBytes(row.entryBytes) + COMMIT_RECORD_BYTES;
}

/** The ceiling: one write + fdatasync of `batchBytes` per step over a preallocated (zero-written) file. */
class CeilingLoop {
  private readonly capacityBytes: number;
  private file!: StorageFile;
  private files = 0;
  private position = 0;
  private readonly batch: Uint8Array;

  constructor(
    private readonly fs: NodeFileSystem,
    private readonly dir: string,
    readonly batchBytes: number,
    /**
     * Write into fresh space instead: new sparse 64 MiB files, one after the other, as a
     * log that only grows does (the reference for that workload; not the target's ceiling).
     */
    readonly fresh = false,
  ) {
    this.batch = new Uint8Array(batchBytes).fill(0x5a);
    this.capacityBytes = (fresh ? 64 : 256) * 1024 * 1024;
  }

  async setUp(): Promise<void> {
    await this.fs.ensureDirectory(this.dir);
    if (this.fresh) return this.nextFreshFile();
    this.file = await this.fs.open(join(this.dir, "plain"), { create: true });
    const zeros = new Uint8Array(1024 * 1024);
    for (let at = 0; at < this.capacityBytes; at += zeros.length) await this.file.write(zeros, at);
    await this.file.sync();
  }

  private async nextFreshFile(): Promise<void> {
    if (this.file) {
      await this.file.close();
      await this.fs.remove(this.file.path);
    }
    this.file = await this.fs.open(join(this.dir, `fresh-${++this.files}`), { create: true });
    await this.file.truncate(this.capacityBytes);
    await this.file.sync();
    this.position = 0;
  }

  /** Runs batches (write + fdatasync) for `seconds`; returns batches per second. */
  async run(seconds: number): Promise<number> {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    let batches = 0;
    while (performance.now() < deadline) {
      if (this.position + this.batchBytes > this.capacityBytes) {
        if (this.fresh) await this.nextFreshFile();
        else this.position = 0;
      }
      await this.file.write(this.batch, this.position);
      await this.file.sync();
      this.position += this.batchBytes;
      batches++;
    }
    return batches / ((performance.now() - started) / 1000);
  }

  async tearDown(): Promise<void> {
    await this.file.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A WAL configuration to measure; `steady` makes the load compact as a node does (steady state). */
export interface Variant {
  name: string;
  options: WalOptions;
  /**
   * Compact the whole log as a node with the default snapshot policy does: after every
   * 100,000 entries or 256 MiB of entry data, whichever comes first. Without it the log only grows.
   */
  steady?: boolean;
}

/** The node's default snapshot policy (src/node/raft-node.ts): SNAPSHOT_EVERY_ENTRIES_DEFAULT, SNAPSHOT_EVERY_WAL_BYTES_DEFAULT. */
const COMPACT_EVERY_ENTRIES = 100_000;
const COMPACT_EVERY_BYTES = 256 * 1024 * 1024;

/** One WAL configuration under a row's load: `appenders` closed-loop appenders, runnable in slices. */
class WalVariantLoad {
  private wal!: Wal;
  private next = 1;
  private entriesSinceCompaction = 0;
  private compaction: Promise<void> | undefined;
  compactions = 0;
  readonly latencies: number[] = [];
  seconds = 0;
  appended = 0;
  cpuMicros = 0;
  private ioAtStart = zeroCounters();

  constructor(
    readonly variant: Variant,
    readonly fs: CountingFileSystem,
    private readonly dir: string,
    private readonly row: TargetRow,
  ) {}

  /** Opens the WAL and warms it up: JIT, first batches, and (steady state) two compactions. */
  async setUp(): Promise<void> {
    this.wal = await Wal.open(this.dir, { ...this.variant.options, fs: this.fs });
    while (this.variant.steady && this.compactions < 2) await this.run(0.2, false);
    await this.run(0.2, false);
    this.ioAtStart = { ...this.fs.io };
  }

  /** Starts a compaction of the whole log when the node's policy says so (appends queue behind it, as in a node). */
  private compactIfDue(): void {
    const due = Math.min(COMPACT_EVERY_ENTRIES, Math.floor(COMPACT_EVERY_BYTES / this.row.entryBytes));
    if (!this.variant.steady || this.compaction || this.entriesSinceCompaction < due) return;
    this.entriesSinceCompaction = 0;
    this.compactions++;
    this.compaction = this.wal.compact(this.wal.lastIndex(), 1).finally(() => (this.compaction = undefined));
  }

  /**
   * Runs the appenders for `seconds`, then waits for the WAL's background I/O (preparing a
   * segment) to finish, charged to this slice; returns the slice's entries/s.
   */
  async run(seconds: number, record = true): Promise<number> {
    let running = true;
    let appended = 0;
    const worker = async (): Promise<void> => {
      while (running) {
        const entry = makeEntry(this.next++, this.row.entryBytes);
        const started = performance.now();
        await this.wal.append([entry]);
        if (record) this.latencies.push((performance.now() - started) * 1000);
        appended++;
        this.entriesSinceCompaction++;
        this.compactIfDue();
      }
    };
    this.fs.openGapWindow(record);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const workers = Array.from({ length: this.row.appenders }, worker);
    await sleep(seconds * 1000);
    running = false;
    await Promise.all(workers);
    await this.compaction;
    const quietMs = await this.fs.settle();
    const elapsed = (performance.now() - started - quietMs) / 1000;
    if (record) {
      const cpu = process.cpuUsage(cpuBefore);
      this.cpuMicros += cpu.user + cpu.system;
      this.seconds += elapsed;
      this.appended += appended;
    }
    return appended / elapsed;
  }

  /** Segment I/O since the end of the warm-up. */
  io(): IoCounters {
    return subtract(this.fs.io, this.ioAtStart);
  }

  async tearDown(): Promise<void> {
    await this.wal.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What one WAL variant achieved on one row. */
export interface VariantResult {
  variant: string;
  options: WalOptions;
  steady: boolean;
  /** Entries per second over the variant's slices. */
  entriesPerSecond: number;
  /** Median over the rounds of (the variant's slice entries/s) / (the ceiling's slice entries/s, same round). */
  ratioToCeiling: number;
  roundRatios: number[];
  p50Micros: number;
  p99Micros: number;
  /** Mean entries per batch (batches counted as segment writes ending with a commit record). */
  entriesPerBatch: number;
  /** Mean duration of a batch's write call, and of a segment sync call, in microseconds (thread-pool round trip included). */
  batchWriteMicros: number;
  syncMicros: number;
  /** Segment sync calls per batch (preallocation syncs included). */
  syncsPerBatch: number;
  /** Bytes written to segments other than batches (zero-filling, headers) per byte of batches. */
  otherBytesPerBatchByte: number;
  /** Time with a segment write or sync in flight over the slices' time. */
  ioShare: number;
  /** Time with two or more in flight over the slices' time: how much the WAL's two batches overlap. */
  overlapShare: number;
  /** Median time from a batch write's completion to the start of the next one, in microseconds (CountingFileSystem.batchGapsMs). */
  batchGapMicrosP50: number;
  /** Process CPU time (all threads) per entry, in microseconds. */
  cpuMicrosPerEntry: number;
  compactions: number;
  met: boolean;
}

export interface RowResult {
  row: TargetRow;
  rounds: number;
  sliceSeconds: number;
  /** Median over the rounds of the ceiling's entries/s. */
  ceilingEntriesPerSecond: number;
  /** With `freshCeiling`: the same loop into fresh space, and the median of its per-round ratio to the ceiling. */
  freshCeilingEntriesPerSecond?: number;
  freshToCeiling?: number;
  variants: VariantResult[];
}

export interface TargetOptions {
  rounds: number;
  sliceSeconds: number;
  rows: TargetRow[];
  /** WAL configurations to compare; the first should be the default. */
  variants: Variant[];
  /** Also run the ceiling's loop into fresh space (new sparse files) each round. */
  freshCeiling?: boolean;
}

function summarize(load: WalVariantLoad, roundRatios: number[], row: TargetRow): VariantResult {
  const sorted = Float64Array.from(load.latencies).sort();
  const io = load.io();
  const batches = Math.max(1, io.batchWrites);
  const ratioToCeiling = median(roundRatios);
  const p99Micros = percentile(sorted, 99);
  return {
    variant: load.variant.name,
    options: load.variant.options,
    steady: load.variant.steady === true,
    entriesPerSecond: load.appended / load.seconds,
    ratioToCeiling,
    roundRatios,
    p50Micros: percentile(sorted, 50),
    p99Micros,
    entriesPerBatch: load.appended / batches,
    batchWriteMicros: (io.batchWriteMs * 1000) / batches,
    syncMicros: io.syncs > 0 ? (io.syncMs * 1000) / io.syncs : 0,
    syncsPerBatch: io.syncs / batches,
    otherBytesPerBatchByte: io.otherBytes / Math.max(1, io.batchBytes),
    ioShare: io.busyMs / 1000 / load.seconds,
    overlapShare: io.overlapMs / 1000 / load.seconds,
    batchGapMicrosP50: percentile(Float64Array.from(load.fs.batchGapsMs).sort(), 50) * 1000,
    cpuMicrosPerEntry: load.cpuMicros / Math.max(1, load.appended),
    compactions: load.compactions,
    met: ratioToCeiling >= row.ratioMin && p99Micros <= row.p99MicrosMax,
  };
}

/**
 * Runs one row in rounds: a slice of the ceiling, then a slice of every variant. Each
 * variant has its own counting file system, so its background I/O is counted as its own,
 * and each slice ends once that I/O is done.
 */
async function runRow(row: TargetRow, options: TargetOptions, root: string): Promise<RowResult> {
  const ceiling = new CeilingLoop(new NodeFileSystem(), join(root, `${row.name}-ceiling`), ceilingBatchBytes(row));
  await ceiling.setUp();
  // Steady state needs compactions: one every 100,000 entries is minutes away for a single appender.
  const variants = options.variants.filter((variant) => !variant.steady || row.appenders > 1);
  const loads = variants.map((variant) => new WalVariantLoad(variant, new CountingFileSystem(), join(root, `${row.name}-${variant.name}`), row));
  for (const load of loads) await load.setUp();
  const fresh = options.freshCeiling ? new CeilingLoop(new NodeFileSystem(), join(root, `${row.name}-fresh`), ceilingBatchBytes(row), true) : undefined;
  await fresh?.setUp();
  const ceilingRates: number[] = [];
  const freshRates: number[] = [];
  const ratios: number[][] = loads.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    const ceilingRate = (await ceiling.run(options.sliceSeconds)) * row.appenders;
    ceilingRates.push(ceilingRate);
    if (fresh) freshRates.push((await fresh.run(options.sliceSeconds)) * row.appenders);
    for (let k = 0; k < loads.length; k++) ratios[k].push((await loads[k].run(options.sliceSeconds)) / ceilingRate);
  }
  await ceiling.tearDown();
  await fresh?.tearDown();
  const results = loads.map((load, k) => summarize(load, ratios[k], row));
  for (const load of loads) await load.tearDown();
  const result: RowResult = { row, rounds: options.rounds, sliceSeconds: options.sliceSeconds, ceilingEntriesPerSecond: median(ceilingRates), variants: results };
  if (fresh) {
    result.freshCeilingEntriesPerSecond = median(freshRates);
    result.freshToCeiling = median(freshRates.map((rate, k) => rate / ceilingRates[k]));
  }
  return result;
}

/** Measures every row of `options.rows` on the real disk under os.tmpdir(). */
export async function measureTargets(options: TargetOptions): Promise<RowResult[]> {
  const root = mkdtempSync(join(tmpdir(), "raftwal-bench-targets-"));
  try {
    const results: RowResult[] = [];
    for (const row of options.rows) results.push(await runRow(row, options, root));
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => "| " + cells.map((cell, c) => cell.padStart(widths[c])).join(" | ") + " |";
  return [line(headers), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}

function describeRow(row: TargetRow): string {
  const p99 = Number.isFinite(row.p99MicrosMax) ? `, p99 <= ${fmt(row.p99MicrosMax / 1000)} ms` : "";
  return `${row.appenders} x ${fmt(row.entryBytes)} B: >= ${fmt(row.ratioMin, 2)}x${p99}`;
}

function formatVariant(result: RowResult, v: VariantResult): string[] {
  return [
    describeRow(result.row),
    v.variant,
    fmt(v.entriesPerSecond),
    fmt(result.ceilingEntriesPerSecond),
    `${fmt(v.ratioToCeiling, 2)}x`,
    `${fmt(Math.min(...v.roundRatios), 2)}-${fmt(Math.max(...v.roundRatios), 2)}`,
    fmt(v.p50Micros / 1000, 2),
    fmt(v.p99Micros / 1000, 2),
    fmt(v.entriesPerBatch, 1),
    fmt(v.batchWriteMicros),
    fmt(v.syncMicros),
    fmt(v.syncsPerBatch, 2),
    fmt(v.otherBytesPerBatchByte, 2),
    `${fmt(v.ioShare * 100)}%`,
    `${fmt(v.overlapShare * 100)}%`,
    fmt(v.batchGapMicrosP50),
    fmt(v.cpuMicrosPerEntry, 2),
    v.met ? "met" : "MISSED",
  ];
}

/** The targets table: one line per (row, variant). */
export function formatTargets(results: RowResult[]): string {
  const rows = results.flatMap((result) => result.variants.map((v) => formatVariant(result, v)));
  const headers = ["target", "variant", "entries/s", "ceiling/s", "/ceiling", "rounds", "p50 ms", "p99 ms", "entries/batch", "write us", "sync us", "syncs/batch", "prep B/B", "in I/O", "2 in I/O", "gap us", "cpu us/entry", ""];
  const fresh = results.filter((r) => r.freshToCeiling !== undefined);
  const freshLines = fresh.map(
    (r) => `  ${r.row.appenders} x ${fmt(r.row.entryBytes)} B: ${fmt(r.freshCeilingEntriesPerSecond!)}/s = ${fmt(r.freshToCeiling!, 2)}x the ceiling (median of the per-round ratios)`,
  );
  return [
    table(headers, rows),
    ...(freshLines.length > 0 ? ["the ceiling's loop writing into fresh space instead (new sparse 64 MiB files, as a log that only grows):", ...freshLines] : []),
    `/ceiling: median over ${results[0]?.rounds ?? 0} rounds of ${results[0]?.sliceSeconds ?? 0} s of the per-round ratio (each round: a ceiling slice, then a slice of each variant); rounds: the lowest and highest per-round ratio.`,
    "write us / sync us: mean duration of one segment write / sync call seen from the event loop (a durable write counts as a write); prep B/B: bytes written to prepare segments (zero-filling, headers) per byte of batches.",
    "in I/O / 2 in I/O: share of the time with at least one / at least two segment writes or syncs in flight (with 256 appenders the WAL keeps two batches in flight when it can: the rest of the time it is encoding and resolving).",
    "gap us: median time from a batch's durable write completing to the next batch's write starting (resolving its callers, their next calls, encoding, handing the write over).",
  ].join("\n");
}

/** The default configuration, as the log only grows and as a node compacting it runs it. */
export const DEFAULT_VARIANTS: Variant[] = [
  { name: "default", options: {} },
  { name: "default, compacting", options: {}, steady: true },
];

/** One verdict per target and workload, for the benchmark's summary. */
export function targetVerdicts(results: RowResult[]): Record<string, boolean> {
  const verdicts: Record<string, boolean> = {};
  for (const variant of DEFAULT_VARIANTS) {
    const workload = variant.steady ? "compacting as a node does" : "the log only grows";
    for (const result of results) {
      const found = result.variants.find((v) => v.variant === variant.name);
      if (!found || result.row.appenders === 1) continue;
      const p99 = Number.isFinite(result.row.p99MicrosMax) ? `, p99 <= ${fmt(result.row.p99MicrosMax / 1000)} ms` : "";
      const what = `${result.row.appenders} appenders x ${fmt(result.row.entryBytes)} B >= ${fmt(result.row.ratioMin, 2)}x the batch ceiling${p99}`;
      verdicts[`${what} (default configuration, ${workload})`] = found.met;
    }
    const single = results.filter((r) => r.row.appenders === 1).map((r) => r.variants.find((v) => v.variant === variant.name));
    if (single.length > 0 && single.every((v) => v !== undefined)) {
      verdicts[`1 appender >= 0.95x the plain preallocated loop at every size (default configuration, ${workload})`] = single.every((v) => v!.met);
    }
  }
  return verdicts;
}

/** Measures the targets with the default configuration and prints them (called by bench/wal.ts). */
export async function runTargets(quick: boolean): Promise<{ results: RowResult[]; verdicts: Record<string, boolean> }> {
  const results = await measureTargets({ rounds: quick ? 3 : 15, sliceSeconds: quick ? 0.2 : 0.4, rows: TARGET_ROWS, variants: DEFAULT_VARIANTS, freshCeiling: true });
  console.log("\n(e) the targets (issue 11), default configuration; ceiling slices alternate with WAL slices");
  console.log(formatTargets(results));
  return { results, verdicts: targetVerdicts(results) };
}

const USAGE = `Usage: node dist/bench/wal-targets.js [options]   (npm run bench:wal runs it as its section (e))

Issue 11's WAL targets: each round a slice of the disk's plain loop (the ceiling), then a
slice of each WAL variant; the table gives medians of the per-round ratios.

  --rounds N          rounds (default 15)
  --slice S           seconds per slice (default 0.3)
  --rows A,B          only these rows, of ${TARGET_ROWS.map((row) => row.name).join(", ")}
  --no-default        none of the default variants (${DEFAULT_VARIANTS.map((variant) => variant.name).join(", ")})
  --variant NAME=JSON another variant: WalOptions as JSON, plus "steady": true to compact as a node does
                      (steady variants run on the 256-appender rows only; for example
                      --variant sparse='{"preallocation":"sparse","steady":true}'); repeatable
  --fresh-ceiling     also a ceiling that writes into new files
  --json FILE         write the results to FILE
  --help              this text
`;

function parseVariant(spec: string | undefined): Variant {
  const equals = spec?.indexOf("=") ?? -1;
  if (spec === undefined || equals <= 0) refuseArguments(USAGE, "--variant needs NAME=JSON");
  try {
    const { steady, ...walOptions } = JSON.parse(spec.slice(equals + 1)) as WalOptions & { steady?: boolean };
    return { name: spec.slice(0, equals), options: walOptions, steady };
  } catch (error) {
    refuseArguments(USAGE, `--variant ${spec.slice(0, equals)}: not JSON (${(error as Error).message})`);
  }
}

/** The command line's options (all read from process.argv, as bench/usage.ts's helpers read them). */
function parseArguments(): { options: TargetOptions; jsonPath: string | undefined } {
  const argv = process.argv.slice(2);
  handleUsage(USAGE, ["--rounds", "--slice", "--rows", "--no-default", "--variant", "--fresh-ceiling", "--json"]);
  const names = stringOption(USAGE, "--rows", "row names, comma-separated")?.split(",");
  const unknownRows = names?.filter((name) => !TARGET_ROWS.some((row) => row.name === name)) ?? [];
  if (unknownRows.length > 0) refuseArguments(USAGE, `--rows: no row named ${unknownRows.join(", ")}`);
  const rows = names ? TARGET_ROWS.filter((row) => names.includes(row.name)) : TARGET_ROWS;
  const variants: Variant[] = argv.includes("--no-default") ? [] : DEFAULT_VARIANTS.slice();
  argv.forEach((arg, k) => {
    if (arg === "--variant") variants.push(parseVariant(argv[k + 1]));
  });
  const jsonPath = stringOption(USAGE, "--json", "a file name");
  const options: TargetOptions = {
    rounds: numberOption(USAGE, "--rounds", 15, true),
    sliceSeconds: numberOption(USAGE, "--slice", 0.3),
    rows,
    variants,
    freshCeiling: argv.includes("--fresh-ceiling"),
  };
  return { options, jsonPath };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { options, jsonPath } = parseArguments();
  const results = await measureTargets(options);
  console.log(formatTargets(results));
  if (jsonPath !== undefined) writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + "\n");
}
