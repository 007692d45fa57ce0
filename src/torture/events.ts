/**
 * What happened during a torture run, apart from the client history: faults injected,
 * node recoveries, violations found while the run was going (disk-fault handling), and
 * notes for the report. Written by the nemesis and the orchestration, read by the report.
 */
export interface FaultRecord {
  index: number;
  kind: string;
  /** Node ids the fault hit. */
  targets: number[];
  /** Milliseconds since the run started. */
  startedAtMs: number;
  endedAtMs?: number;
  /** How it ended, in words ("restarted", "healed", "stopped by design, repaired", ...). */
  outcome?: string;
}

/** Bound on notes kept (each fault adds a few at most). */
const NOTES_MAX = 10_000;

export class RunEvents {
  readonly faults: FaultRecord[] = [];
  /** Safety violations found during the run (the checks of checks.ts add theirs at the end). */
  readonly violations: string[] = [];
  readonly notes: string[] = [];
  /** Node restarts after which the node answered again. */
  recoveries = 0;
  /** Restarted nodes that caught up through a snapshot from the leader. */
  snapshotCatchUps = 0;
  /** Torn tails the WAL cut at a restart. */
  tornTailsRepaired = 0;
  /** Disk damage detected and reported by the node (at open or by a warning). */
  damageDetected = 0;
  /** Nodes that refused to start on purpose (damaged storage) and were not repaired: excluded from convergence. */
  readonly stoppedByDesign = new Set<number>();
  /** The fault in progress, for the progress line. */
  current = "";

  constructor(private readonly clock: () => number) {}

  now(): number {
    return this.clock();
  }

  begin(index: number, kind: string, targets: number[]): FaultRecord {
    const record: FaultRecord = { index, kind, targets, startedAtMs: Math.round(this.clock()) };
    this.faults.push(record);
    this.current = `${kind} ${targets.map((t) => `n${t}`).join(",")}`;
    return record;
  }

  end(record: FaultRecord, outcome: string): void {
    record.endedAtMs = Math.round(this.clock());
    record.outcome = outcome;
    this.current = "";
  }

  violation(text: string): void {
    this.violations.push(`[${(this.clock() / 1000).toFixed(1)}s] ${text}`);
  }

  note(text: string): void {
    if (this.notes.length < NOTES_MAX) this.notes.push(`[${(this.clock() / 1000).toFixed(1)}s] ${text}`);
  }

  faultCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const fault of this.faults) counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
    return counts;
  }
}
