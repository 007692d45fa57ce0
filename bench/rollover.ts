/**
 * `npm run bench:rollover`: does a put stall when the WAL moves to its next segment (issue
 * 11, "no stall at segment rollover")? A fresh 3-node cluster (as `raftwal cluster` runs it,
 * with small segments so that they roll over often) takes one client's plain puts of 256 B,
 * one at a time, for N seconds; each put's start time and latency are kept. A segment's
 * rollover moment is when its last write landed: the modification time of every sealed
 * segment of every node (the two newest segments of a node are left out: the active one,
 * and a spare prepared ahead, whose time is its preparation). The puts that started within
 * -20..+30 ms of a rollover on any node are compared with all puts. Results:
 * bench/results/rollover.json.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { findFreeBasePort, LocalCluster } from "../src/cli/local-cluster.js";
import { send } from "./cluster-load.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";

const USAGE = `Usage: npm run bench:rollover [-- --seconds N] [-- --segment-bytes N] [-- --rounds N]
       (node dist/bench/rollover.js [flags])

A fresh 3-node raftwal cluster per round takes one client's plain 256 B puts, one at a time;
the puts that started within -20..+30 ms of a WAL segment rollover on any node are compared
with all puts (median, max, against the p99 and p999 of all). Writes bench/results/rollover.json.

  --seconds N        measured seconds per round (default 40)
  --segment-bytes N  WAL segment size of the nodes (default 1048576: a rollover every ~2 s)
  --rounds N         rounds, each on a fresh cluster (default 2)
  --help             this text
`;
handleUsage(USAGE, ["--seconds", "--segment-bytes", "--rounds"]);

const numberFlag = (name: string, fallback: number) => numberOption(USAGE, name, fallback, true);
const SECONDS = numberFlag("--seconds", 40);
const SEGMENT_BYTES = numberFlag("--segment-bytes", 1024 * 1024);
const ROUNDS = numberFlag("--rounds", 2);
/** Unmeasured puts first: the cluster past its first seconds (see the README's cold row). */
const WARMUP_PUTS = 2000;
const NEAR_BEFORE_MS = 20;
const NEAR_AFTER_MS = 30;
const VALUE = Buffer.alloc(256, 0x61);

/** One put's start (wall clock, ms) and latency (ms). */
type Sample = [startMs: number, latencyMs: number];

function putter(apiUrl: string): { put: (i: number) => Promise<void>; close: () => void } {
  const origin = new URL(apiUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { "content-type": "application/octet-stream" };
  const put = async (i: number) => {
    const { status } = await send(agent, origin, { method: "PUT", path: `/kv/k${i % 1000}`, body: VALUE, headers });
    if (status !== 200) throw new Error(`HTTP ${status}`);
  };
  return { put, close: () => agent.destroy() };
}

/** When each sealed segment of every node took its last write (see the header comment). */
function rolloverTimes(cluster: LocalCluster, sinceMs: number): number[] {
  const times: number[] = [];
  for (const spec of cluster.specs) {
    const dir = join(spec.dataDir, "wal");
    const segments = readdirSync(dir).filter((name) => /^segment-\d+\.wal$/.test(name)).sort();
    for (const name of segments.slice(0, -2)) {
      const modified = statSync(join(dir, name)).mtimeMs;
      if (modified >= sinceMs) times.push(modified);
    }
  }
  return times.sort((a, b) => a - b);
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

async function round(root: string, index: number): Promise<Record<string, number>> {
  const dir = join(root, `round-${index}`);
  const cluster = new LocalCluster({ nodes: 3, dir, basePort: await findFreeBasePort(3), logs: "file", logLevel: "warn", nodeArgs: ["--wal-segment-bytes", String(SEGMENT_BYTES)] });
  try {
    await cluster.start();
    const client = putter(cluster.spec(await cluster.waitForLeader(20_000)).apiUrl);
    for (let i = 0; i < WARMUP_PUTS; i++) await client.put(i);
    const samples: Sample[] = [];
    const started = Date.now();
    for (let i = 0; Date.now() - started < SECONDS * 1000; i++) {
      const startMs = Date.now();
      const t0 = performance.now();
      await client.put(i);
      samples.push([startMs, performance.now() - t0]);
    }
    client.close();
    return summarize(samples, rolloverTimes(cluster, started));
  } finally {
    await cluster.stop();
  }
}

function summarize(samples: Sample[], rollovers: number[]): Record<string, number> {
  const all = samples.map(([, latency]) => latency).sort((a, b) => a - b);
  const isNear = (start: number) => rollovers.some((at) => start >= at - NEAR_BEFORE_MS && start <= at + NEAR_AFTER_MS);
  const near = samples.filter(([start]) => isNear(start)).map(([, latency]) => latency).sort((a, b) => a - b);
  const fixed = (value: number) => Number(value.toFixed(2));
  return {
    puts: all.length,
    rollovers: rollovers.length,
    p50Ms: fixed(quantile(all, 0.5)),
    p99Ms: fixed(quantile(all, 0.99)),
    p999Ms: fixed(quantile(all, 0.999)),
    maxMs: fixed(all[all.length - 1]),
    nearPuts: near.length,
    nearP50Ms: fixed(quantile(near, 0.5)),
    nearMaxMs: fixed(near[near.length - 1] ?? Number.NaN),
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(os.tmpdir(), "raftwal-bench-rollover-"));
  console.log(`rollover benchmark: ${ROUNDS} round(s) of ${SECONDS} s, ${SEGMENT_BYTES} B segments, 3 nodes, 1 client, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  try {
    const rounds: Record<string, number>[] = [];
    for (let i = 1; i <= ROUNDS; i++) rounds.push(await round(root, i));
    console.table(rounds);
    console.log(`puts within -${NEAR_BEFORE_MS}..+${NEAR_AFTER_MS} ms of a rollover: nearP50Ms / nearMaxMs against all puts' p50Ms / p999Ms`);
    const path = writeResults("rollover", { date: new Date().toISOString(), segmentBytes: SEGMENT_BYTES, seconds: SECONDS, loadAverageAfter: os.loadavg(), rounds });
    console.log(`results written to ${path}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
