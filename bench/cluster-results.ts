/**
 * What bench:cluster writes to bench/results/cluster.json and cluster-combine reads back: one
 * shape for both, with a round's maps as plain objects.
 */
import type { Breakdown } from "./cluster-breakdown.js";
import type { LoadResult } from "./cluster-load.js";
import type { Round, SummaryRow } from "./cluster-report.js";

export interface SavedRound {
  raftwal: Record<string, LoadResult>;
  etcd: Record<string, LoadResult>;
}

export interface ClusterResults {
  date: string;
  machine: { cores: number; loadAverageBefore: number[]; loadAverageAfter: number[]; node: string; etcd: string | null };
  secondsPerRow: number;
  rounds: SavedRound[];
  summary: SummaryRow[];
  /** Absent from results saved before the breakdown was measured. */
  breakdowns?: Breakdown[];
  markdown: string;
}

export function saveRound(round: Round): SavedRound {
  return { raftwal: Object.fromEntries(round.raftwal), etcd: Object.fromEntries(round.etcd) };
}

export function loadRound(saved: SavedRound): Round {
  return { raftwal: new Map(Object.entries(saved.raftwal)), etcd: new Map(Object.entries(saved.etcd)) };
}
