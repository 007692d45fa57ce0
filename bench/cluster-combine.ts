/**
 * `node dist/bench/cluster-combine.js A.json B.json ...`: the cluster benchmark's table over
 * the rounds of several runs (copies of bench/results/cluster.json), with the medians of the
 * per-round ratios over all of them, as the README's "Cluster results" quotes it.
 */
import { readFileSync } from "node:fs";
import type { LoadResult } from "./cluster-load.js";
import { markdown, summarize, type Round } from "./cluster-report.js";
import { rowSpecs } from "./cluster-rows.js";
import { handleUsage } from "./usage.js";

handleUsage("Usage: node dist/bench/cluster-combine.js RESULTS.json [RESULTS.json ...]\n\nThe bench:cluster table over the rounds of every file given.\n", []);

interface SavedRun {
  rounds: Array<{ raftwal: Record<string, LoadResult>; etcd: Record<string, LoadResult> }>;
}

const rounds: Round[] = process.argv.slice(2).flatMap((file) =>
  (JSON.parse(readFileSync(file, "utf8")) as SavedRun).rounds.map((round) => ({ raftwal: new Map(Object.entries(round.raftwal)), etcd: new Map(Object.entries(round.etcd)) })),
);
console.log(markdown(summarize(rowSpecs(false), rounds)));
