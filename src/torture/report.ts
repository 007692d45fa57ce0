/**
 * The final report of a torture run: a plain-text table of operations by outcome, faults
 * injected by kind, recoveries, elections, and the checkers' verdicts, ending with the
 * overall verdict and how to replay the run.
 */
import type { Verdict } from "./checks.js";
import type { RunEvents } from "./events.js";
import type { History } from "./history.js";

export interface ReportInput {
  seed: number;
  nodes: number;
  clients: number;
  groups: readonly string[];
  safetyMs: number;
  livenessMs: number;
  history: History;
  events: RunEvents;
  /** Leader changes seen by the status monitor, and the highest term seen. */
  leaderChanges: number;
  maxTerm: number;
  verdicts: readonly Verdict[];
  dir: string;
  replay: string;
}

export function renderReport(input: ReportInput): string {
  const lines: string[] = [];
  const counts = input.history.counts();
  lines.push(`raftwal torture: seed ${input.seed}, ${input.nodes} nodes, ${input.clients} clients, nemesis ${input.groups.join(",") || "none"}`);
  lines.push(`safety phase ${(input.safetyMs / 1000).toFixed(1)} s, liveness phase ${(input.livenessMs / 1000).toFixed(1)} s`);
  lines.push("");
  lines.push("operations        ok   failed  unknown");
  for (const [kind, row] of [...input.history.countsByKind()].sort()) {
    lines.push(`  ${kind.padEnd(12)} ${pad(row.ok)} ${pad(row.failed)} ${pad(row.unknown)}`);
  }
  lines.push(`  ${"total".padEnd(12)} ${pad(counts.ok)} ${pad(counts.failed)} ${pad(counts.unknown)}`);
  lines.push("");
  lines.push("faults injected");
  const faultCounts = [...input.events.faultCounts()].sort();
  if (faultCounts.length === 0) lines.push("  (none)");
  for (const [kind, count] of faultCounts) lines.push(`  ${kind.padEnd(20)} ${pad(count)}`);
  if (input.events.stepsSkipped > 0) lines.push(`  (${input.events.stepsSkipped} disk or membership steps skipped: the cluster was not whole)`);
  lines.push("");
  lines.push("recovery");
  lines.push(`  node restarts that came back   ${input.events.recoveries}`);
  lines.push(`  catch-ups through a snapshot   ${input.events.snapshotCatchUps}`);
  lines.push(`  torn WAL tails cut at restart  ${input.events.tornTailsRepaired}`);
  lines.push(`  leader changes observed        ${input.leaderChanges}`);
  lines.push(`  highest term (elections)       ${input.maxTerm}`);
  lines.push("");
  lines.push(...storageDamageLines(input.events), "");
  lines.push(...stopLines(input.events), "");
  if (input.events.membershipChanges.size > 0 || input.events.membershipRequestsFailed > 0) lines.push(...membershipLines(input.events), "");
  lines.push("checks");
  for (const verdict of input.verdicts) {
    const [first, ...rest] = verdict.detail.split("\n");
    lines.push(`  ${verdict.status.toUpperCase().padEnd(8)} ${verdict.name.padEnd(28)} ${first}`);
    for (const line of rest.slice(0, 40)) lines.push(`           ${line}`);
  }
  lines.push("");
  const failed = input.verdicts.some((verdict) => verdict.status === "fail");
  const unknown = input.verdicts.some((verdict) => verdict.status === "unknown");
  lines.push(`verdict: ${failed ? "VIOLATION" : unknown ? "no violation found (some checks inconclusive)" : "PASS"}`);
  lines.push(`history and node logs: ${input.dir}`);
  lines.push(`replay: ${input.replay}`);
  return `${lines.join("\n")}\n`;
}

/** Bits flipped by what they damaged, how the nodes found them, and the repairs with their durations. */
function storageDamageLines(events: RunEvents): string[] {
  const injected = [...events.damageInjected].sort();
  const total = injected.reduce((sum, [, count]) => sum + count, 0);
  const seconds = events.repairs.map((repair) => repair.seconds).sort((a, b) => a - b);
  const durations = seconds.length === 0 ? "" : `   (median ${seconds[Math.floor(seconds.length / 2)].toFixed(2)} s, longest ${seconds[seconds.length - 1].toFixed(2)} s)`;
  return [
    "storage damage",
    `  injected                       ${total}${total > 0 ? `   (${injected.map(([kind, count]) => `${kind} ${count}`).join(", ")})` : ""}`,
    `  detected at start              ${events.damageDetectedAtStart}   (the node's "storage damage: ..." log lines)`,
    `  detected while running         ${events.damageDetectedWhileRunning}   (a damaged record read: the node stopped)`,
    `  snapshots skipped, none lost   ${events.damagedSnapshotsSkipped}`,
    `  repairs from peers completed   ${events.repairs.length}${durations}`,
  ];
}

/** Nodes that stopped by themselves, with why, and whether a scenario expected it. */
function stopLines(events: RunEvents): string[] {
  if (events.stops.length === 0) return ["nodes that had to stop          none"];
  const byReason = new Map<string, { expected: number; unexpected: number }>();
  for (const stop of events.stops) {
    const row = byReason.get(stop.reason) ?? { expected: 0, unexpected: 0 };
    if (stop.expected) row.expected++;
    else row.unexpected++;
    byReason.set(stop.reason, row);
  }
  const lines = [`nodes that had to stop          ${events.stops.length}`];
  for (const [reason, row] of [...byReason].sort()) lines.push(`  ${reason}: ${row.expected} expected, ${row.unexpected} not expected`);
  for (const stop of events.stops.filter((one) => !one.expected).slice(0, 10)) lines.push(`  n${stop.id} at ${(stop.atMs / 1000).toFixed(1)}s: ${stop.detail.slice(0, 300)}`);
  return lines;
}

function membershipLines(events: RunEvents): string[] {
  const changes = [...events.membershipChanges].sort();
  const total = changes.filter(([kind]) => !kind.startsWith("replace")).reduce((sum, [, count]) => sum + count, 0);
  return [
    "membership changes",
    `  ${changes.map(([kind, count]) => `${kind} ${count}`).join(", ")}   (${total} changes)`,
    `  requests refused or timed out  ${events.membershipRequestsFailed}`,
    `  removed nodes exited by themselves (code 0)  ${events.removals.filter((removal) => removal.byItself).length} of ${events.removals.length}`,
  ];
}

/** The faults as run, one line each (kept in the run directory as faults.txt). */
export function renderFaultLog(events: RunEvents): string {
  const lines = events.faults.map(
    (fault) => `#${fault.index} ${((fault.startedAtMs) / 1000).toFixed(1)}s-${((fault.endedAtMs ?? fault.startedAtMs) / 1000).toFixed(1)}s ${fault.kind} [${fault.targets.map((t) => `n${t}`).join(",")}] ${fault.outcome ?? "(interrupted)"}`,
  );
  return `${[...lines, "", "notes:", ...events.notes, "", "violations seen during the run:", ...(events.violations.length ? events.violations : ["(none)"])].join("\n")}\n`;
}

function pad(value: number): string {
  return String(value).padStart(7);
}
