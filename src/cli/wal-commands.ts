/**
 * `raftwal wal inspect|dump|verify|repair DIR`: the WAL inspection tool.
 *
 * DIR is a node's data directory (with wal/, hardstate/, snap/) or a WAL directory
 * (wal-target.ts). Only `repair` writes, and only to cut a torn tail: it takes the data
 * directory's lock first, so it refuses (WAL_ERR_LOCKED, exit 1) while a node runs there.
 * The others only read, so they read a locked directory too, after a one-line warning.
 *
 * Exit codes (io.ts): 0 healthy / done, 1 usage or operational error, 2 torn tail
 * (repairable, from inspect and verify), 3 corruption (inspect, verify; repair refuses).
 */
import { Command, Option } from "commander";
import { listSegments, repairTornTail, scanWal, RECORD_TYPE_NAMES, WalCorruptionError, type ScannedRecord } from "../../storage/wal/index.js";
import { CliError, ExitCode } from "./io.js";
import type { CliContext } from "./program.js";
import { ProgressBar, parseIndexOption, preview, table, writeWithBackpressure } from "./text.js";
import { checkHealth, type Health } from "./wal-health.js";
import { checkWalSegments, locateWalTarget, resolveWalTarget, type WalTarget } from "./wal-target.js";
import { describeClusterConfig } from "../raft/cluster-config.js";

/** Below this many segments verification is quick: no progress bar. */
export const PROGRESS_BAR_SEGMENTS_MIN = 4;

/** Record types `dump --type` accepts, as `dump` prints them. */
export const DUMP_TYPES = [...Object.values(RECORD_TYPE_NAMES), "segment-header", "unknown"];

export function registerWalCommands(program: Command, context: CliContext): void {
  const wal = program.command("wal").description("inspect, dump, verify and repair a write-ahead log");
  const directoryHelp = "a node data directory (containing wal/) or a WAL directory (containing segment-*.wal)";

  wal
    .command("inspect")
    .description("segments, hard state, snapshots and a health verdict")
    .argument("<DIR>", directoryHelp)
    .action(async (directory: string) => {
      context.exitCode = await inspect(context, directory);
    });

  wal
    .command("dump")
    .description("one line per record: index, term, type, size, segment:offset, status, payload preview")
    .argument("<DIR>", directoryHelp)
    .option("--from <N>", "only records with index >= N", parseIndexOption)
    .option("--to <M>", "only records with index <= M", parseIndexOption)
    .addOption(new Option("--type <T>", "only records of this type").choices(DUMP_TYPES))
    .option("--json", "JSON lines, one object per record")
    .action(async (directory: string, options: DumpOptions) => {
      context.exitCode = await dump(context, directory, options);
    });

  wal
    .command("verify")
    .description("check every record; exit 0 healthy, 2 torn tail (repairable), 3 corruption")
    .argument("<DIR>", directoryHelp)
    .action(async (directory: string) => {
      context.exitCode = await verify(context, directory);
    });

  wal
    .command("repair")
    .description("cut a torn tail (saving the cut bytes beside the segment); refuses corruption (exit 3)")
    .argument("<DIR>", directoryHelp)
    .action(async (directory: string) => {
      context.exitCode = await repair(context, directory);
    });
}

// ---- inspect -------------------------------------------------------------------------------

/**
 * The read-only commands read a directory a live process holds, but say so: what they show
 * may change under them (a batch being written reads as a torn tail).
 */
async function warnIfLocked(context: CliContext, target: WalTarget): Promise<void> {
  if (!target.lockDirectory) return;
  const holder = await context.io.fs.directoryLockHolder(target.lockDirectory);
  if (!holder) return;
  context.io.stderr.write(
    `raftwal: warning: ${target.lockDirectory} is in use by process ${holder.pid ?? "(pid unknown)"} (a running node?); reading it anyway, and what it writes meanwhile may read as a torn tail\n`,
  );
}

/** Resolves DIR for a read-only command and warns if a live process holds it. */
async function readTarget(context: CliContext, directory: string): Promise<WalTarget> {
  const target = await resolveWalTarget(context.io.fs, directory);
  await warnIfLocked(context, target);
  return target;
}

async function inspect(context: CliContext, directory: string): Promise<ExitCode> {
  const { fs, stdout } = context.io;
  const target = await readTarget(context, directory);
  const segments = await listSegments(target.walDirectory, fs);
  const health = await checkHealth(fs, target, directory);
  const verified = new Map(health.wal.segments.map((s) => [s.segmentId, s]));
  const rows = [["ID", "NAME", "FIRST", "LAST", "USED/SIZE (bytes)", "STATE"]];
  for (const segment of segments) {
    const v = verified.get(segment.segmentId);
    const first = segment.header?.firstIndex;
    const last = v && v.maxEntryIndex > 0 ? String(v.maxEntryIndex) : "-";
    const used = v ? String(v.committedBytes) : "?";
    rows.push([String(segment.segmentId), segment.name, first === undefined ? "-" : String(first), last, `${used}/${segment.fileBytes}`, segment.state]);
  }
  let text = `WAL ${target.walDirectory}\n${table(rows)}`;
  if (!health.wal.corruption) {
    const { firstIndex, lastIndex, entries } = health.wal;
    text += `log: ${entries} entries${entries > 0 ? ` (${firstIndex}..${lastIndex})` : ""}, first index ${firstIndex}, last index ${lastIndex}\n`;
  }
  text += describeHardState(health);
  text += describeSnapshots(health);
  text += health.verdict.map((line) => `health: ${line}\n`).join("");
  stdout.write(text);
  return health.exitCode;
}

function describeHardState(health: Health): string {
  const hard = health.hardState;
  if (!hard) return "hard state: (not shown: DIR is a WAL directory, not a node data directory)\n";
  if (hard.problem) return `hard state: CORRUPT (${hard.problem})\n`;
  if (!hard.exists) return "hard state: none saved yet (term 0, vote 0, commit 0)\n";
  const { term, vote, commit } = hard.state!;
  return `hard state: term ${term}, vote ${vote === 0 ? "none" : vote}, commit ${commit}\n`;
}

function describeSnapshots(health: Health): string {
  const snapshots = health.snapshots;
  if (!snapshots) return "";
  if (snapshots.length === 0) return "snapshots: none\n";
  const rows = [["NAME", "INDEX", "TERM", "PAYLOAD (bytes)", "CONFIGURATION", "STATUS"]];
  for (const s of snapshots) {
    rows.push([s.name, String(s.index), String(s.term), s.meta ? String(s.meta.sizeBytes) : "?", s.meta ? describeClusterConfig(s.meta.config) : "?", s.status === "corrupt" ? `CORRUPT: ${s.problem}` : "ok"]);
  }
  return `snapshots (newest first):\n${table(rows)}`;
}

// ---- dump ------------------------------------------------------------------------------------

interface DumpOptions {
  from?: number;
  to?: number;
  type?: string;
  json?: boolean;
}

/** Records printed per write to stdout: amortizes the writes of a large dump. */
const DUMP_LINES_PER_WRITE = 256;

function selected(record: ScannedRecord, options: DumpOptions): boolean {
  if (options.type !== undefined && record.type !== options.type) return false;
  if (options.from !== undefined && record.index < options.from) return false;
  if (options.to !== undefined && record.index > options.to) return false;
  return true;
}

function dumpLine(record: ScannedRecord, json: boolean): string {
  const shown = record.entry ? record.entry.data : record.payload;
  if (json) {
    return JSON.stringify({
      segment: record.segment,
      segmentId: record.segmentId,
      offset: record.offset,
      type: record.type,
      index: record.index,
      term: record.term,
      sizeBytes: record.sizeBytes,
      status: record.status,
      ...(record.reason ? { reason: record.reason } : {}),
      ...(record.entry ? { dataBytes: record.entry.data.length } : {}),
      preview: preview(shown),
    });
  }
  const status = record.status === "ok" ? "ok" : `${record.status.toUpperCase()} (${record.reason ?? "?"})`;
  return [
    `index ${record.index}`.padEnd(16),
    `term ${record.term}`.padEnd(10),
    record.type.padEnd(15),
    `${record.sizeBytes} B`.padEnd(10),
    `${record.segmentId}:${record.offset}`.padEnd(14),
    status.padEnd(4),
    preview(shown),
  ].join(" ");
}

async function dump(context: CliContext, directory: string, options: DumpOptions): Promise<ExitCode> {
  const { fs, stdout } = context.io;
  if (options.from !== undefined && options.to !== undefined && options.from > options.to) {
    throw new CliError(`--from ${options.from} is above --to ${options.to}`);
  }
  const target = await readTarget(context, directory);
  let lines: string[] = [];
  for await (const record of scanWal(target.walDirectory, fs)) {
    if (!selected(record, options)) continue;
    lines.push(dumpLine(record, options.json === true));
    if (lines.length >= DUMP_LINES_PER_WRITE) {
      await writeWithBackpressure(stdout, `${lines.join("\n")}\n`);
      lines = [];
    }
  }
  if (lines.length > 0) await writeWithBackpressure(stdout, `${lines.join("\n")}\n`);
  return ExitCode.OK;
}

// ---- verify ----------------------------------------------------------------------------------

async function verify(context: CliContext, directory: string): Promise<ExitCode> {
  const { fs, stdout, stderr } = context.io;
  const target = await readTarget(context, directory);
  const bar = new ProgressBar(stderr, "verifying segments");
  const onProgress = (done: number, total: number): void => {
    if (total >= PROGRESS_BAR_SEGMENTS_MIN) bar.update(done, total);
  };
  let health: Health;
  try {
    health = await checkHealth(fs, target, directory, onProgress);
  } finally {
    bar.clear();
  }
  const { wal } = health;
  let summary = "";
  if (!wal.corruption) {
    summary = `WAL ${target.walDirectory}: ${wal.segments.length} segments, ${wal.entries} entries`;
    summary += wal.entries > 0 ? ` (${wal.firstIndex}..${wal.lastIndex})` : "";
    summary += `, ${wal.bytesChecked} bytes checked\n`;
  }
  if (health.hardState && !health.hardState.problem) summary += "hard state: ok\n";
  if (health.snapshots) {
    const good = health.snapshots.filter((s) => s.status !== "corrupt").length;
    summary += `snapshots: ${good} of ${health.snapshots.length} ok\n`;
  }
  stdout.write(summary + health.verdict.map((line) => `${line}\n`).join(""));
  return health.exitCode;
}

// ---- repair ----------------------------------------------------------------------------------

async function repair(context: CliContext, directory: string): Promise<ExitCode> {
  const { fs } = context.io;
  const target = await locateWalTarget(fs, directory);
  // Before reading a segment: a live node's WAL is never cut (WAL_ERR_LOCKED, exit 1).
  const lock = target.lockDirectory === undefined ? undefined : await fs.lockDirectory(target.lockDirectory);
  try {
    await checkWalSegments(fs, target);
    return await repairLocked(context, target);
  } finally {
    await lock?.release();
  }
}

async function repairLocked(context: CliContext, target: WalTarget): Promise<ExitCode> {
  const { fs, stdout, stderr } = context.io;
  try {
    const cut = await repairTornTail(target.walDirectory, fs);
    if (!cut) {
      stdout.write(`nothing to repair: ${target.walDirectory} has no torn tail\n`);
    } else {
      stdout.write(
        `cut the torn tail of ${cut.segment} at byte offset ${cut.offset}: ${cut.bytes} bytes (${cut.reason})` +
          `${cut.savedTo ? `, saved to ${cut.savedTo}` : ""}\n`,
      );
    }
    return ExitCode.OK;
  } catch (error) {
    if (!(error instanceof WalCorruptionError)) throw error;
    stderr.write(
      `raftwal: refusing to repair ${target.walDirectory}: it is corrupt, not torn: ${error.segment} at byte offset ${error.offset}: ${error.reason}` +
        `; acknowledged data is damaged and is never cut automatically (rebuild this node from a healthy replica)\n`,
    );
    return ExitCode.CORRUPT;
  }
}
