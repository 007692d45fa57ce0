/**
 * The torture run's history: every client operation with its invocation and completion
 * times (milliseconds on this process's monotonic clock, `performance.now()`) and its
 * outcome, in the format the linearizability checker reads (src/check/linearizability.ts):
 *   - ok: the answer arrived (a read's value, a CAS's ok/mismatch, a delete's existed);
 *   - failed: the service definitely did not apply it (a 4xx answer other than the
 *     operation's own "no"), left out of the check;
 *   - unknown: no answer (timeout, connection lost, node killed): it may or may not have
 *     taken effect; an operation still in flight when the run ends is unknown too.
 *
 * Recording is separate from checking (STYLE.md): the workload calls `invoke` and then one
 * of `ok` / `fail` / `unknown`; checks read `operations()` afterwards.
 */
import type { HistoryOperation } from "../check/linearizability.js";

/** Bound on operations one run records: beyond it the workload stops issuing (about 200 MB of history at most). */
export const HISTORY_OPERATIONS_MAX = 1_000_000;

/** What a client is about to do (the fields fixed at invocation). */
export type Invocation =
  | { op: "read"; key: string }
  | { op: "write"; key: string; value: string }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expect: string | null; value: string };

/** The answer of an operation that completed with outcome ok. */
export type Completion =
  | { op: "read"; result: string | null }
  | { op: "write" }
  | { op: "delete"; existed: boolean }
  | { op: "cas"; result: "ok" | "mismatch"; current?: string | null };

/** One recorded operation: a checker operation plus where it went and why it failed. */
export type RecordedOperation = HistoryOperation & {
  /** Position in the history (order of invocation). */
  id: number;
  /** Phase of the run it was invoked in. */
  phase: string;
  /** For failed and unknown outcomes: the error text. */
  error?: string;
};

export class History {
  private readonly records: RecordedOperation[] = [];
  private readonly inFlight = new Set<number>();
  phase = "safety";

  constructor(private readonly clock: () => number) {}

  /** Whether the history can take another operation (HISTORY_OPERATIONS_MAX). */
  full(): boolean {
    return this.records.length >= HISTORY_OPERATIONS_MAX;
  }

  /** Records the invocation now; returns the id to complete it with. */
  invoke(clientId: string, invocation: Invocation): number {
    if (this.full()) throw new Error(`history is full (${HISTORY_OPERATIONS_MAX} operations)`);
    const id = this.records.length;
    this.records.push({ ...invocation, clientId, invokedAt: this.clock(), outcome: "unknown", id, phase: this.phase } as RecordedOperation);
    this.inFlight.add(id);
    return id;
  }

  ok(id: number, completion: Completion): void {
    const record = this.open(id);
    if (record.op !== completion.op) throw new Error(`operation ${id} is a ${record.op}, completed as a ${completion.op}`);
    const { op: _op, ...answer } = completion;
    Object.assign(record, answer, { outcome: "ok", completedAt: this.clock() });
  }

  fail(id: number, error: string): void {
    Object.assign(this.open(id), { outcome: "failed", completedAt: this.clock(), error });
  }

  unknown(id: number, error: string): void {
    Object.assign(this.open(id), { outcome: "unknown", error });
  }

  /** Every operation so far; those still in flight are (and stay) unknown. */
  operations(): readonly RecordedOperation[] {
    return this.records;
  }

  /** Operations by outcome (in-flight ones count as unknown). */
  counts(): { total: number; ok: number; failed: number; unknown: number; inFlight: number } {
    let ok = 0;
    let failed = 0;
    for (const record of this.records) {
      if (record.outcome === "ok") ok++;
      else if (record.outcome === "failed") failed++;
    }
    return { total: this.records.length, ok, failed, unknown: this.records.length - ok - failed, inFlight: this.inFlight.size };
  }

  /** Counts per operation kind and outcome, for the report. */
  countsByKind(): Map<string, { ok: number; failed: number; unknown: number }> {
    const counts = new Map<string, { ok: number; failed: number; unknown: number }>();
    for (const record of this.records) {
      let row = counts.get(record.op);
      if (!row) counts.set(record.op, (row = { ok: 0, failed: 0, unknown: 0 }));
      row[record.outcome]++;
    }
    return counts;
  }

  /** One JSON object per line, in invocation order. */
  toJsonLines(): string {
    return this.records.map((record) => JSON.stringify(record)).join("\n") + (this.records.length > 0 ? "\n" : "");
  }

  private open(id: number): RecordedOperation {
    if (!this.inFlight.delete(id)) throw new Error(`operation ${id} is not in flight`);
    return this.records[id];
  }
}
