/**
 * `node dist/bench/cluster-combine.js A.json B.json ...`: the cluster benchmark's table over
 * the rounds of several runs (copies of bench/results/cluster.json), with the medians of the
 * per-round ratios over all of them, as the README's "Cluster results" quotes it; then the
 * latency breakdown of one put over the rounds of all of them.
 */
import { readFileSync } from "node:fs";
import { breakdownSections } from "./cluster-breakdown.js";
import { markdown, markdownTable, summarize } from "./cluster-report.js";
import { loadRound, type ClusterResults } from "./cluster-results.js";
import { rowSpecs } from "./cluster-rows.js";
import { handleUsage } from "./usage.js";

handleUsage("Usage: node dist/bench/cluster-combine.js RESULTS.json [RESULTS.json ...]\n\nThe bench:cluster table and the latency breakdown of one put over the rounds of every file given.\n", []);

const runs = process.argv.slice(2).map((file) => JSON.parse(readFileSync(file, "utf8")) as ClusterResults);
const rounds = runs.flatMap((run) => run.rounds.map(loadRound));
console.log(markdown(summarize(rowSpecs(false), rounds)));
const breakdowns = runs.flatMap((run) => run.breakdowns ?? []);
for (const { title, rows } of breakdownSections(breakdowns)) console.log(`\n${title}\n\n${markdownTable(rows)}`);
