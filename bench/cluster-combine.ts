/**
 * `node dist/bench/cluster-combine.js A.json B.json ...`: the cluster benchmark's table over
 * the rounds of several runs (copies of bench/results/cluster.json), with the medians of the
 * per-round ratios over all of them, as the README's "Cluster results" quotes it; then the
 * latency breakdown of one put over the rounds of all of them.
 */
import { readFileSync } from "node:fs";
import type { LoadResult } from "./cluster-load.js";
import { breakdownTable, followerBreakdownTable, type Breakdown } from "./cluster-breakdown.js";
import { markdown, markdownTable, summarize, type Round } from "./cluster-report.js";
import { rowSpecs } from "./cluster-rows.js";
import { handleUsage } from "./usage.js";

handleUsage("Usage: node dist/bench/cluster-combine.js RESULTS.json [RESULTS.json ...]\n\nThe bench:cluster table and the latency breakdown of one put over the rounds of every file given.\n", []);

interface SavedRun {
  rounds: Array<{ raftwal: Record<string, LoadResult>; etcd: Record<string, LoadResult> }>;
  breakdowns?: Breakdown[];
}

const runs = process.argv.slice(2).map((file) => JSON.parse(readFileSync(file, "utf8")) as SavedRun);
const rounds: Round[] = runs.flatMap((run) => run.rounds.map((round) => ({ raftwal: new Map(Object.entries(round.raftwal)), etcd: new Map(Object.entries(round.etcd)) })));
console.log(markdown(summarize(rowSpecs(false), rounds)));
const breakdowns = runs.flatMap((run) => run.breakdowns ?? []);
if (breakdowns.length > 0) console.log(`\nLatency breakdown of one put (1 client, plain PUT, on the leader with --trace-latency):\n\n${markdownTable(breakdownTable(breakdowns))}`);
const followerRows = followerBreakdownTable(breakdowns);
if (followerRows.length > 0) console.log(`\nThe same puts on one follower (from the append's arrival to its acknowledgement):\n\n${markdownTable(followerRows)}`);
