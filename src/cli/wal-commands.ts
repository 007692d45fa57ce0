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
import { EntryType } from "../proto/schema.js";
import { repairTornTail, scanWal, RECORD_TYPE_NAMES, WalCorruptionError, type ScannedRecord } from "../../storage/wal/index.js";
import { CliError, ExitCode } from "./io.js";
import type { CliContext } from "./program.js";
import { CONFIG_ENTRY_KIND, recordJson, recordLine } from "./record-view.js";
import { ProgressBar, parseIndexOption, writeWithBackpressure } from "./text.js";
import { checkHealth, healthStatus, type Health } from "./wal-health.js";
import { inspect } from "./wal-inspect.js";
import { repairPlanJson, repairPlanText } from "./wal-repair-plan.js";
import { checkWalSegments, locateWalTarget, readWalTarget, type WalTarget } from "./wal-target.js";

/** Below this many segments verification is quick: no progress bar. */
export const PROGRESS_BAR_SEGMENTS_MIN = 4;

/** Record types `dump --type` accepts, as `dump` prints them ("config": configuration entries only). */
export const DUMP_TYPES = [...Object.values(RECORD_TYPE_NAMES), CONFIG_ENTRY_KIND, "segment-header", "unknown"];

export function registerWalCommands(program: Command, context: CliContext): void {
  const wal = program.command("wal").description("inspect, dump, verify and repair a write-ahead log");
  const directoryHelp = "a node data directory (containing wal/) or a WAL directory (containing segment-*.wal)";

  wal
    .command("inspect")
    .description("segments, hard state, snapshots, the configuration in force and a health verdict")
    .argument("<DIR>", directoryHelp)
    .option("--json", "one JSON object instead of tables")
    .action(async (directory: string, options: { json?: boolean }) => {
      context.exitCode = await inspect(context, directory, options);
    });

  wal
    .command("dump")
    .description("one line per record: index, term, type, size, segment:offset, status, what it holds (a decoded command, a configuration)")
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
    .description("check every record; exit 0 healthy, 2 torn tail (repairable), 3 corruption (and what a node repairing from its peers would keep and fetch)")
    .argument("<DIR>", directoryHelp)
    .option("--json", "one JSON object instead of text")
    .action(async (directory: string, options: { json?: boolean }) => {
      context.exitCode = await verify(context, directory, options);
    });

  wal
    .command("repair")
    .description("cut a torn tail (saving the cut bytes beside the segment); refuses corruption (exit 3)")
    .argument("<DIR>", directoryHelp)
    .action(async (directory: string) => {
      context.exitCode = await repair(context, directory);
    });
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
  if (options.type === CONFIG_ENTRY_KIND ? record.entry?.type !== EntryType.CLUSTER_CONFIG : options.type !== undefined && record.type !== options.type) return false;
  if (options.from !== undefined && record.index < options.from) return false;
  if (options.to !== undefined && record.index > options.to) return false;
  return true;
}

async function dump(context: CliContext, directory: string, options: DumpOptions): Promise<ExitCode> {
  const { fs, stdout } = context.io;
  if (options.from !== undefined && options.to !== undefined && options.from > options.to) {
    throw new CliError(`--from ${options.from} is above --to ${options.to}`);
  }
  const { target } = await readWalTarget(context.io, directory);
  let lines: string[] = [];
  for await (const record of scanWal(target.walDirectory, fs)) {
    if (!selected(record, options)) continue;
    lines.push(options.json ? JSON.stringify(recordJson(record)) : recordLine(record));
    if (lines.length >= DUMP_LINES_PER_WRITE) {
      await writeWithBackpressure(stdout, `${lines.join("\n")}\n`);
      lines = [];
    }
  }
  if (lines.length > 0) await writeWithBackpressure(stdout, `${lines.join("\n")}\n`);
  return ExitCode.OK;
}

// ---- verify ----------------------------------------------------------------------------------

async function verify(context: CliContext, directory: string, options: { json?: boolean }): Promise<ExitCode> {
  const { fs, stdout, stderr } = context.io;
  const { target, holder } = await readWalTarget(context.io, directory);
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
  stdout.write(options.json ? verifyJson(target, health, holder?.pid) : verifyText(target, health));
  return health.exitCode;
}

function verifyText(target: WalTarget, health: Health): string {
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
  summary += health.verdict.map((line) => `${line}\n`).join("");
  if (health.repair) return summary + repairPlanText(health.repair);
  if (health.exitCode === ExitCode.CORRUPT && !target.hardStateDirectory) {
    summary += "repair: verify the node's data directory (not its WAL directory alone) to see what a repair from peers would keep and fetch\n";
  }
  return summary;
}

function verifyJson(target: WalTarget, health: Health, inUseByPid: number | undefined): string {
  const { wal } = health;
  const report = {
    walDirectory: target.walDirectory,
    ...(target.lockDirectory ? { dataDirectory: target.lockDirectory } : {}),
    ...(inUseByPid !== undefined ? { inUseByPid } : {}),
    status: healthStatus(health),
    exitCode: health.exitCode,
    wal: {
      status: wal.status,
      segments: wal.segments.length,
      entries: wal.entries,
      firstIndex: wal.firstIndex,
      lastIndex: wal.lastIndex,
      bytesChecked: wal.bytesChecked,
      ...(wal.tornTail ? { tornTail: wal.tornTail } : {}),
      ...(wal.corruption ? { corruption: wal.corruption } : {}),
    },
    hardState: !health.hardState ? null : health.hardState.problem ? { status: "corrupt", problem: health.hardState.problem } : { status: health.hardState.exists ? "ok" : "none" },
    snapshots: health.snapshots
      ? { total: health.snapshots.length, ok: health.snapshots.filter((s) => s.status !== "corrupt").length, corrupt: health.snapshots.filter((s) => s.status === "corrupt").map((s) => ({ name: s.name, problem: s.problem })) }
      : null,
    verdict: health.verdict,
    repair: repairPlanJson(health.repair),
  };
  return `${JSON.stringify(report, null, 2)}\n`;
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
