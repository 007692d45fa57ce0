/**
 * The cluster benchmark's table: per row, every round's figures for both systems and the
 * median over rounds of the per-round ratios raftwal / etcd (the ratio of one round compares
 * measurements taken minutes apart on the same machine; the median of those ratios resists a
 * noisy round better than a ratio of medians, and never picks the best run).
 */
import type { LoadResult } from "./cluster-load.js";
import { etcdSignature, raftwalSignature, type RowSpec } from "./cluster-rows.js";
import { median } from "./stats.js";

/** One round's measurements, by signature (cluster-rows.ts). */
export interface Round {
  raftwal: Map<string, LoadResult>;
  etcd: Map<string, LoadResult>;
}

export interface SummaryRow {
  row: string;
  clients: number;
  raftwalOpsPerSecond: number[];
  etcdOpsPerSecond: number[];
  /** Median of the per-round ratios (raftwal / etcd); NaN without etcd. */
  opsRatio: number;
  raftwalLatencyMsP50: number[];
  etcdLatencyMsP50: number[];
  raftwalLatencyMsP99: number[];
  etcdLatencyMsP99: number[];
  p50Ratio: number;
  p99Ratio: number;
  raftwalServerCpuUsPerOp: number[];
  etcdServerCpuUsPerOp: number[];
  cpuRatio: number;
  errors: number;
}

function ratios(raftwal: number[], etcd: number[]): number {
  return median(raftwal.map((r, i) => r / (etcd[i] ?? Number.NaN)));
}

export function summarize(specs: RowSpec[], rounds: Round[]): SummaryRow[] {
  return specs.map((spec) => {
    const r = rounds.map((round) => round.raftwal.get(raftwalSignature(spec))).filter((m): m is LoadResult => m !== undefined);
    const e = rounds.map((round) => round.etcd.get(etcdSignature(spec))).filter((m): m is LoadResult => m !== undefined);
    const pick = (list: LoadResult[], f: (m: LoadResult) => number) => list.map(f);
    const row: SummaryRow = {
      row: spec.label,
      clients: spec.clients,
      raftwalOpsPerSecond: pick(r, (m) => m.opsPerSecond),
      etcdOpsPerSecond: pick(e, (m) => m.opsPerSecond),
      opsRatio: Number.NaN,
      raftwalLatencyMsP50: pick(r, (m) => m.latencyMsP50),
      etcdLatencyMsP50: pick(e, (m) => m.latencyMsP50),
      raftwalLatencyMsP99: pick(r, (m) => m.latencyMsP99),
      etcdLatencyMsP99: pick(e, (m) => m.latencyMsP99),
      p50Ratio: Number.NaN,
      p99Ratio: Number.NaN,
      raftwalServerCpuUsPerOp: pick(r, (m) => m.serverCpuUsPerOp),
      etcdServerCpuUsPerOp: pick(e, (m) => m.serverCpuUsPerOp),
      cpuRatio: Number.NaN,
      errors: [...r, ...e].reduce((sum, m) => sum + Object.values(m.errors).reduce((a, b) => a + b, 0), 0),
    };
    if (e.length === r.length && e.length > 0) {
      row.opsRatio = ratios(row.raftwalOpsPerSecond, row.etcdOpsPerSecond);
      row.p50Ratio = ratios(row.raftwalLatencyMsP50, row.etcdLatencyMsP50);
      row.p99Ratio = ratios(row.raftwalLatencyMsP99, row.etcdLatencyMsP99);
      row.cpuRatio = ratios(row.raftwalServerCpuUsPerOp, row.etcdServerCpuUsPerOp);
    }
    return row;
  });
}

const whole = (values: number[]) => (values.length ? values.map((v) => Math.round(v).toLocaleString("en-US")).join(", ") : "-");
const range = (values: number[], digits = 1) => {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "-";
  const low = Math.min(...finite).toFixed(digits);
  const high = Math.max(...finite).toFixed(digits);
  return low === high ? low : `${low}-${high}`;
};
const ratio = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : "-");

/** One row of a printed table (console.table's shape; markdownTable's input). */
export type TableRow = Record<string, string | number>;

/** The table as printed (console.table) and as the README quotes it. */
export function printable(rows: SummaryRow[]): TableRow[] {
  return rows.map((row) => ({
    op: row.row,
    clients: row.clients,
    "raftwal ops/s (rounds)": whole(row.raftwalOpsPerSecond),
    "etcd ops/s (rounds)": whole(row.etcdOpsPerSecond),
    ratio: ratio(row.opsRatio),
    "p50 ms r / e": `${range(row.raftwalLatencyMsP50, 2)} / ${range(row.etcdLatencyMsP50, 2)}`,
    "p50 ratio": ratio(row.p50Ratio),
    "p99 ms r / e": `${range(row.raftwalLatencyMsP99)} / ${range(row.etcdLatencyMsP99)}`,
    "p99 ratio": ratio(row.p99Ratio),
    "server CPU µs/op r / e": `${range(row.raftwalServerCpuUsPerOp, 0)} / ${range(row.etcdServerCpuUsPerOp, 0)}`,
    // Issue 11's CPU target is this ratio (<= 1/3), so it is printed, not left to the JSON.
    "CPU ratio": ratio(row.cpuRatio),
    errors: row.errors,
  }));
}

/** The same table in Markdown, for the README. */
export function markdown(rows: SummaryRow[]): string {
  return markdownTable(printable(rows));
}

/** Rows of a printable table (console.table's shape) as a Markdown table. */
export function markdownTable(table: TableRow[]): string {
  const headers = Object.keys(table[0] ?? {});
  const line = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...table.map((row) => line(headers.map((h) => row[h])))].join("\n");
}
