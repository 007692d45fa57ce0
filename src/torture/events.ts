/**
 * What happened during a torture run, apart from the client history: faults injected,
 * node recoveries, storage damage and its repairs, nodes that stopped by themselves,
 * membership changes, violations found while the run was going, and notes for the
 * report. Written by the nemesis and the orchestration, read by the report and the checks.
 */
export interface FaultRecord {
  index: number;
  kind: string;
  /** Node ids the fault hit. */
  targets: number[];
  /** Milliseconds since the run started. */
  startedAtMs: number;
  endedAtMs?: number;
  /** How it ended, in words ("restarted", "healed", "damage repaired from peers in 1.2 s", ...). */
  outcome?: string;
}

/** A node that stopped by itself (not killed by the tool). */
export interface NodeStop {
  id: number;
  /** Why, from its last line: "RAFT_ERR_UNREPAIRABLE", "storage damage found while running", ... */
  reason: string;
  /** The node's last line (its `raftwal: ...` error), or how its process ended. */
  detail: string;
  /** The scenario expected it (a read of a record the nemesis damaged under a running node). */
  expected: boolean;
  atMs: number;
}

/** A removed member's process, and how it ended. */
export interface RemovalExit {
  id: number;
  /** Exited by itself with code 0 (else: killed after the bound, or another code). */
  byItself: boolean;
  detail: string;
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
  /** Bits flipped, by what they damaged ("WAL sealed segment", "hard state", ...). */
  readonly damageInjected = new Map<string, number>();
  /** Damaged nodes whose log reported the damage at their next start ("storage damage: ..."). */
  damageDetectedAtStart = 0;
  /** Damaged snapshots skipped at start for an older valid one, nothing lost (a warning naming the file). */
  damagedSnapshotsSkipped = 0;
  /** Damage a running node found by reading a damaged record: it stopped. */
  damageDetectedWhileRunning = 0;
  /** Repairs from peers completed: the node and how long it took (its "storage repaired from peers" line). */
  readonly repairs: Array<{ id: number; seconds: number }> = [];
  /** Nodes that stopped by themselves. */
  readonly stops: NodeStop[] = [];
  /** Membership changes made, by kind ("add learner", "promote", "remove leader", ...). */
  readonly membershipChanges = new Map<string, number>();
  /** Membership requests refused or timed out (noted; the tracker then reads the cluster's own view). */
  membershipRequestsFailed = 0;
  /** How each removed member's process ended. */
  readonly removals: RemovalExit[] = [];
  /** Disk and membership steps skipped because the cluster was not whole (a node down or repairing, no leader). */
  stepsSkipped = 0;
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

  stopped(stop: Omit<NodeStop, "atMs">): void {
    this.stops.push({ ...stop, atMs: Math.round(this.clock()) });
  }

  faultCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const fault of this.faults) counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
    return counts;
  }
}

/** Adds one to `key` of a count map. */
export function countOne(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
