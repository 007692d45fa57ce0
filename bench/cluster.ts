/**
 * `npm run bench:cluster`: raftwal against etcd, as a user would measure them (issue 11's
 * method). Three members each, separate processes on loopback, fsync on; the same client
 * code for both (cluster-load.ts, matching ../shared/bench/kv-bench.mjs); requests at the
 * leader (stale reads at a follower). Rounds alternate the systems (at least 3 by default),
 * each round starting every cluster fresh; the table gives every round's figures and the
 * median of the per-round ratios raftwal / etcd. Rows: cluster-rows.ts. The latency
 * breakdown of one put (cluster-breakdown.ts) comes from a raftwal cluster started with
 * `--trace-latency`, which also serves the lease-read row (`--read-mode lease`).
 *
 * Without etcd installed (Debian: apt-get install etcd-server etcd-client) it measures
 * raftwal alone and says so. Results: bench/results/cluster.json.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { breakdownSections, measureBreakdown, type Breakdown } from "./cluster-breakdown.js";
import { runLoad, type LoadResult } from "./cluster-load.js";
import { markdown, printable, summarize, type Round } from "./cluster-report.js";
import { saveRound, type ClusterResults } from "./cluster-results.js";
import { CLUSTER_MEMBERS, COLD_SECONDS, etcdCluster, etcdSignature, raftwalSignature, rowSpecs, VALUE_BYTES_DEFAULT, type ClusterKind, type RowSpec } from "./cluster-rows.js";
import { etcdVersion, KEYS, startEtcd, startRaftwal, type System } from "./cluster-systems.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";

const USAGE = `Usage: npm run bench:cluster [-- --quick] [-- --seconds N] [-- --rounds N] [-- --no-etcd]
       (node dist/bench/cluster.js [flags])

raftwal (3 node processes) against etcd (3 members) on loopback, fsync on, in rounds that
alternate the two systems, every cluster started fresh; the same HTTP/1.1 keep-alive client
for both (as ../shared/bench/kv-bench.mjs). Rows: puts of 256 B values with 1, 16, 64 and
256 clients (plain requests, and with KvClient's session headers at 1 and 16), the first
${COLD_SECONDS} s after start, 4 KiB and 64 KiB values, linearizable gets, stale gets at a
follower, lease gets (a cluster with --read-mode lease), puts on 5 members; and the latency
breakdown of one put (a leader with --trace-latency, and one follower's part of it). Every cluster but for its cold row is
first settled by unmeasured 16-client puts (8 s), the same for both systems. Prints every round and the median of the per-round
ratios raftwal / etcd; writes bench/results/cluster.json. Takes about 3.5 minutes a round.

  --quick       2 s per row, fewer rows, 1 round (unless --rounds)
  --seconds N   length of each measured row (default 5)
  --rounds N    rounds (default 3)
  --no-etcd     raftwal only (also what happens when etcd is not installed)
  --help        this text
`;

handleUsage(USAGE, ["--seconds", "--quick", "--rounds", "--no-etcd"]);

const numberFlag = (name: string, fallback: number) => numberOption(USAGE, name, fallback);

const quick = process.argv.includes("--quick");
const SECONDS = numberFlag("--seconds", quick ? 2 : 5);
const ROUNDS = Math.floor(numberFlag("--rounds", quick ? 1 : 3));
const specs = rowSpecs(quick);
const values = new Map<number, Buffer>();
const valueOf = (bytes: number) => values.get(bytes) ?? values.set(bytes, randomBytes(bytes)).get(bytes)!;

/**
 * Unmeasured 16-client puts before a cluster's settled rows (after its cold row, if it has
 * one), the same for both systems: the rows then compare settled clusters, and the cold row
 * shows what the first seconds cost.
 */
const SETTLE_SECONDS = quick ? 2 : 8;

async function settle(system: System): Promise<void> {
  const value = valueOf(VALUE_BYTES_DEFAULT);
  await runLoad({ url: system.leaderUrl, clients: 16, seconds: SETTLE_SECONDS, warmupRequests: 0, serverPids: [], request: (i, w) => system.request("put", i, w, value), check: (s, b) => system.check("put", s, b) });
}

/** A cluster's rows: its cold row first (from the moment it has a leader), then settled ones. */
async function measureRows(system: System, rows: RowSpec[], measured: Map<string, LoadResult>, signature: (spec: RowSpec) => string, settled = false): Promise<void> {
  const ordered = [...rows.filter((spec) => spec.cold), ...rows.filter((spec) => !spec.cold)];
  for (const spec of ordered) {
    if (measured.has(signature(spec))) continue;
    if (!spec.cold && !settled) {
      await settle(system);
      settled = true;
    }
    const result = await measureRow(system, spec);
    measured.set(signature(spec), result);
    const label = system.name === "etcd" ? spec.label.replace(/ \(etcd: .*\)$/, "").replace("lease get", "linearizable get") : spec.label;
    console.log(describe(system.name, { ...spec, label }, result));
  }
}

/** Puts every key once, so that gets find values (kv-bench's prefill). */
async function prefill(system: System): Promise<void> {
  const value = valueOf(VALUE_BYTES_DEFAULT);
  await runLoad({ url: system.leaderUrl, clients: 16, seconds: 60, warmupRequests: 0, requestsMax: KEYS, serverPids: [], request: (i, w) => system.request("put", i, w, value), check: (s, b) => system.check("put", s, b) });
}

async function measureRow(system: System, spec: RowSpec): Promise<LoadResult> {
  const kind = system.name === "etcd" ? spec.etcdKind : spec.kind;
  if (kind.startsWith("get")) await prefill(system);
  const value = valueOf(spec.valueBytes);
  return runLoad({
    url: spec.at === "leader" ? system.leaderUrl : system.followerUrl,
    clients: spec.clients,
    seconds: spec.cold ? Math.min(COLD_SECONDS, SECONDS) : SECONDS,
    ...(spec.cold ? { warmupRequests: 0 } : {}),
    serverPids: system.pids(),
    request: (i, worker) => system.request(kind, i, worker, value),
    check: (status, body) => system.check(kind, status, body),
  });
}

function describe(system: string, spec: RowSpec, result: LoadResult): string {
  const errors = Object.entries(result.errors).map(([what, n]) => `${n} x ${what}`).join("; ");
  return `  ${system.padEnd(7)} ${`${spec.label}, ${spec.clients} client${spec.clients > 1 ? "s" : ""}`.padEnd(48)} ${Math.round(result.opsPerSecond).toString().padStart(6)} ops/s  p50 ${result.latencyMsP50.toFixed(2)} ms  p99 ${result.latencyMsP99.toFixed(2)} ms${errors ? `  errors: ${errors}` : ""}`;
}

/** One raftwal cluster (default, or lease reads with the latency trace): its rows, and the breakdown on the lease one. */
async function raftwalRun(dir: string, cluster: ClusterKind, round: Round): Promise<Breakdown | undefined> {
  const rows = specs.filter((s) => s.cluster === cluster);
  if (rows.length === 0) return undefined;
  const nodeArgs = cluster === "lease" ? ["--read-mode", "lease", "--trace-latency"] : [];
  const system = await startRaftwal(join(dir, `raftwal-${cluster}`), { nodes: CLUSTER_MEMBERS[cluster], nodeArgs });
  try {
    // The breakdown first on its cluster: the lease reads then find it as settled as the default cluster's reads.
    const breakdown = cluster === "lease" ? await settle(system).then(() => measureBreakdown(system, SECONDS, valueOf(VALUE_BYTES_DEFAULT))) : undefined;
    await measureRows(system, rows, round.raftwal, raftwalSignature, breakdown !== undefined);
    return breakdown;
  } finally {
    await system.stop();
  }
}

/** One etcd cluster: every distinct etcd request the rows on it compare with. */
async function etcdRun(dir: string, cluster: ClusterKind, round: Round): Promise<void> {
  const rows = specs.filter((s) => etcdCluster(s) === cluster);
  if (rows.length === 0) return;
  const system = await startEtcd(join(dir, `etcd-${cluster}`), CLUSTER_MEMBERS[cluster]);
  if (!system) return;
  try {
    await measureRows(system, rows, round.etcd, etcdSignature);
  } finally {
    await system.stop();
  }
}

async function runRound(index: number, withEtcd: boolean, breakdowns: Breakdown[]): Promise<Round> {
  const dir = mkdtempSync(join(os.tmpdir(), `raftwal-bench-cluster-${index}-`));
  const round: Round = { raftwal: new Map(), etcd: new Map() };
  const raftwal = async () => {
    await raftwalRun(dir, "default", round);
    const breakdown = await raftwalRun(dir, "lease", round);
    if (breakdown) breakdowns.push(breakdown);
    await raftwalRun(dir, "five", round);
  };
  const etcd = async () => {
    await etcdRun(dir, "default", round);
    await etcdRun(dir, "five", round);
  };
  try {
    console.log(`round ${index + 1} of ${ROUNDS} (load average ${os.loadavg()[0].toFixed(2)})`);
    // Alternate which system goes first, so that a drift of the machine does not favour one.
    if (!withEtcd) await raftwal();
    else if (index % 2 === 0) await raftwal().then(etcd);
    else await etcd().then(raftwal);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return round;
}

async function main(): Promise<void> {
  const etcd = process.argv.includes("--no-etcd") ? undefined : etcdVersion();
  const loadBefore = os.loadavg();
  console.log(`raftwal cluster benchmark: ${ROUNDS} round(s), ${SECONDS} s per row, ${os.cpus().length} cores, load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`);
  if (!etcd) {
    console.log(process.argv.includes("--no-etcd") ? "--no-etcd: raftwal only, no ratios" : "etcd is not installed (Debian: apt-get install etcd-server etcd-client): raftwal only, no ratios");
  } else console.log(`against ${etcd}`);
  const rounds: Round[] = [];
  const breakdowns: Breakdown[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await runRound(i, etcd !== undefined, breakdowns));
  const loadAfter = os.loadavg();
  const summary = summarize(specs, rounds);
  console.log(`\nMedians of per-round ratios raftwal / etcd (load average at the end ${loadAfter.map((l) => l.toFixed(2)).join(" ")}):`);
  console.table(printable(summary));
  for (const { title, rows } of breakdownSections(breakdowns)) {
    console.log(`\n${title}`);
    console.table(rows);
  }
  const results: ClusterResults = {
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter, node: process.version, etcd: etcd ?? null },
    secondsPerRow: SECONDS,
    rounds: rounds.map(saveRound),
    summary,
    breakdowns,
    markdown: markdown(summary),
  };
  const path = writeResults("cluster", results);
  console.log(`results written to ${path}`);
}

await main();
