/**
 * `raftwal wal inspect DIR [--json]`: segments, the log's range, hard state, snapshots,
 * the entries kept behind the newest snapshot (its catch-up tail), the cluster configuration
 * in force and a health verdict, as a table or one JSON object.
 */
import { EntryType, type ClusterConfig } from "../proto/schema.js";
import { describeClusterConfig } from "../raft/cluster-config.js";
import { decodeConfigEntry } from "../raft/config-log.js";
import { listSegments, type SegmentListing } from "../../storage/wal/index.js";
import type { ExitCode } from "./io.js";
import type { CliContext } from "./program.js";
import { table } from "./text.js";
import { checkHealth, healthStatus, type Health } from "./wal-health.js";
import { readWalTarget, type WalTarget } from "./wal-target.js";

/** The configuration in force: the log's newest configuration entry, else the newest snapshot's (Raft thesis 4.1: a server uses the latest configuration in its log). */
export interface ConfigurationInForce {
  source: "log" | "snapshot" | "none" | "unknown";
  /** The entry's or the snapshot's index and term. */
  index?: number;
  term?: number;
  config?: ClusterConfig;
  /** Why it is "none" or "unknown", or a configuration entry that does not decode. */
  note?: string;
}

export function configurationInForce(health: Health): ConfigurationInForce {
  if (health.wal.corruption) return { source: "unknown", note: "the WAL is corrupt" };
  const snapshot = health.snapshots?.find((s) => s.status !== "corrupt" && s.meta);
  const entry = health.wal.typedEntries.filter((e) => e.type === EntryType.CLUSTER_CONFIG).pop();
  if (entry && (!snapshot || entry.index > snapshot.index)) {
    try {
      return { source: "log", index: entry.index, term: entry.term, config: decodeConfigEntry(entry) };
    } catch (error) {
      return { source: "unknown", index: entry.index, term: entry.term, note: `configuration entry ${entry.index} does not decode: ${(error as Error).message}` };
    }
  }
  if (snapshot?.meta) return { source: "snapshot", index: snapshot.index, term: snapshot.term, config: snapshot.meta.config };
  if (!health.snapshots) return { source: "none", note: "no configuration entry in the log; a WAL directory shows no snapshots" };
  return { source: "none", note: "no configuration entry in the log and no snapshot: the node has not joined a cluster yet" };
}

function describeConfiguration(c: ConfigurationInForce): string {
  if (c.source === "log") return `configuration: ${describeClusterConfig(c.config!)} (the log's latest configuration entry: index ${c.index}, term ${c.term})\n`;
  if (c.source === "snapshot") {
    return `configuration: ${describeClusterConfig(c.config!)} (the newest snapshot's, index ${c.index}; no configuration entry in the log after it)\n`;
  }
  return c.source === "none" ? `configuration: none (${c.note})\n` : `configuration: unknown (${c.note})\n`;
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

interface CatchUpTail {
  firstIndex: number;
  lastIndex: number;
  entries: number;
}

/**
 * The log's entries at or below the newest valid snapshot's index: kept behind it for
 * followers a little behind (storage/raft-storage.ts, createSnapshot's `compactTo`).
 */
function catchUpTail(health: Health): CatchUpTail | undefined {
  const snapshot = health.snapshots?.find((s) => s.status !== "corrupt");
  const wal = health.wal;
  if (!snapshot || wal.corruption || wal.entries === 0 || wal.firstIndex > snapshot.index) return undefined;
  const lastIndex = Math.min(snapshot.index, wal.lastIndex);
  return { firstIndex: wal.firstIndex, lastIndex, entries: lastIndex - wal.firstIndex + 1 };
}

function describeCatchUpTail(health: Health): string {
  const tail = catchUpTail(health);
  if (!tail) return "";
  return `catch-up tail: ${tail.entries} entries (${tail.firstIndex}..${tail.lastIndex}) kept behind the newest snapshot, for followers a little behind\n`;
}

interface SegmentRow {
  segmentId: number;
  name: string;
  firstIndex: number | null;
  lastIndex: number | null;
  /** Bytes up to the end of the last complete batch (null when the WAL is corrupt). */
  usedBytes: number | null;
  fileBytes: number;
  state: SegmentListing["state"];
}

function segmentRows(segments: SegmentListing[], health: Health): SegmentRow[] {
  const verified = new Map(health.wal.segments.map((s) => [s.segmentId, s]));
  return segments.map((segment) => {
    const v = verified.get(segment.segmentId);
    return {
      segmentId: segment.segmentId,
      name: segment.name,
      firstIndex: segment.header?.firstIndex ?? null,
      lastIndex: v && v.maxEntryIndex > 0 ? v.maxEntryIndex : null,
      usedBytes: v ? v.committedBytes : null,
      fileBytes: segment.fileBytes,
      state: segment.state,
    };
  });
}

function inspectText(target: WalTarget, rows: SegmentRow[], health: Health, configuration: ConfigurationInForce): string {
  const header = [["ID", "NAME", "FIRST", "LAST", "USED/SIZE (bytes)", "STATE"]];
  const cells = rows.map((r) => [String(r.segmentId), r.name, String(r.firstIndex ?? "-"), String(r.lastIndex ?? "-"), `${r.usedBytes ?? "?"}/${r.fileBytes}`, r.state]);
  let text = `WAL ${target.walDirectory}\n${table([...header, ...cells])}`;
  if (!health.wal.corruption) {
    const { firstIndex, lastIndex, entries } = health.wal;
    text += `log: ${entries} entries${entries > 0 ? ` (${firstIndex}..${lastIndex})` : ""}, first index ${firstIndex}, last index ${lastIndex}\n`;
  }
  text += describeHardState(health);
  text += describeSnapshots(health);
  text += describeCatchUpTail(health);
  text += describeConfiguration(configuration);
  return text + health.verdict.map((line) => `health: ${line}\n`).join("");
}

function inspectJson(target: WalTarget, rows: SegmentRow[], health: Health, configuration: ConfigurationInForce, inUseByPid: number | undefined): string {
  const { wal } = health;
  const hard = health.hardState;
  const report = {
    walDirectory: target.walDirectory,
    ...(target.lockDirectory ? { dataDirectory: target.lockDirectory } : {}),
    ...(inUseByPid !== undefined ? { inUseByPid } : {}),
    segments: rows,
    log: wal.corruption ? null : { entries: wal.entries, firstIndex: wal.firstIndex, lastIndex: wal.lastIndex },
    hardState: !hard ? null : hard.problem ? { status: "corrupt", problem: hard.problem } : hard.exists ? { status: "ok", ...hard.state } : { status: "none" },
    snapshots:
      health.snapshots?.map((s) => ({
        name: s.name,
        index: s.index,
        term: s.term,
        status: s.status === "corrupt" ? "corrupt" : "ok",
        ...(s.problem ? { problem: s.problem } : {}),
        ...(s.meta ? { sizeBytes: s.meta.sizeBytes, config: { ...s.meta.config, description: describeClusterConfig(s.meta.config) } } : {}),
      })) ?? null,
    catchUpTail: catchUpTail(health) ?? null,
    configuration: configuration.config ? { ...configuration, config: { ...configuration.config, description: describeClusterConfig(configuration.config) } } : configuration,
    health: { status: healthStatus(health), exitCode: health.exitCode, verdict: health.verdict },
  };
  return `${JSON.stringify(report, null, 2)}\n`;
}

export async function inspect(context: CliContext, directory: string, options: { json?: boolean }): Promise<ExitCode> {
  const { fs, stdout } = context.io;
  const { target, holder } = await readWalTarget(context.io, directory);
  const segments = await listSegments(target.walDirectory, fs);
  const health = await checkHealth(fs, target, directory);
  const rows = segmentRows(segments, health);
  const configuration = configurationInForce(health);
  stdout.write(options.json ? inspectJson(target, rows, health, configuration, holder?.pid) : inspectText(target, rows, health, configuration));
  return health.exitCode;
}
