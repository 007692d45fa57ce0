/**
 * `npm run bench:membership`: what a membership change costs on a real cluster, with
 * ~100 MB of state. A 3-node cluster of `raftwal node` processes on loopback (the KV
 * service, fsync on) is loaded with 16 KiB values until it holds the state, and the leader
 * snapshots it (the byte-based snapshot policy is set just under the load, so it snapshots
 * once, at the end). Then, in each round:
 *
 *   1. idle: a 4th node, started on an empty directory before the load (not timed), is added as a learner; it is
 *      caught up (applied the leader's commit index at the add) by the leader's snapshot;
 *      it is promoted to voter. Reported: time to catch up, snapshot bytes and transfer
 *      rate (from the add request to the learner's "installed a snapshot" log line), time
 *      to promote.
 *   2. under load: a steady write load (the repository's KvClient, fixed concurrency,
 *      256 B values over 1,000 keys) runs; after a warm-up and a few seconds a 5th node is added,
 *      caught up and promoted the same way; the load runs a few seconds more. Reported:
 *      writes per second before, during and after the change, and the dip ratio (the
 *      slowest second of the change over the median second before).
 *
 * Every round starts a fresh cluster. Medians over the rounds go to the table and, with
 * every round's numbers and per-second series, to bench/results/membership.json.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { findFreeBasePort, LocalCluster, type LocalNodeSpec } from "../src/cli/local-cluster.js";
import { KvError } from "../src/kv/client.js";
import { NodeFileSystem } from "../storage/fs/node-file-system.js";
import { listSnapshotFiles } from "../storage/snapshot-store.js";
import { loadState, logLines, sleep, until } from "./cluster-steps.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";
import { SteadyWriteLoad, throughputDip, type ThroughputDip } from "./write-load.js";
import { median } from "./stats.js";

const HELP = `Usage: npm run bench:membership [-- options]

A real 3-node cluster of processes loaded with ~100 MB of KV state; per round: add a learner
and promote it (idle), then again under a steady write load; reports catch-up time, snapshot
bytes and MB/s, promote time, and writes/s before/during/after the change with the dip ratio.

  --state-mb N     state to load, in MB (default 100; --quick: 16)
  --rounds N       fresh clusters measured (default 2; --quick: 1); the table shows medians
  --clients N      writers of the steady load (default 16)
  --quick          a small, fast run to check the benchmark works
  --help           this text`;

handleUsage(`${HELP}\n`, ["--state-mb", "--rounds", "--clients", "--quick"]);
const quick = process.argv.includes("--quick");
const flag = (name: string, fallback: number) => numberOption(HELP, name, fallback);

const STATE_BYTES = flag("--state-mb", quick ? 16 : 100) * 1_000_000;
const ROUNDS = flag("--rounds", quick ? 1 : 2);
const LOAD_CLIENTS = flag("--clients", 16);
/** Values of the initial state: large, so that 100 MB is a few thousand entries. */
const STATE_VALUE_BYTES = 16 * 1024;
/** Writers loading the initial state. */
const STATE_WRITERS = 16;
/** The steady load: small values over a small key space (the state barely grows). */
const LOAD_VALUE_BYTES = 256;
const LOAD_KEYS = 1000;
/** Seconds of steady load before the change (after the warm-up) and after it. */
const STEADY_SECONDS = quick ? 3 : 8;
/** Seconds of load left out at its start (connections opening, the JIT warming up). */
const WARMUP_SECONDS = quick ? 2 : 4;
/** Pause between the idle change and the load. */
const SETTLE_SECONDS = quick ? 1 : 5;
/** Nodes that ever exist: 3 founding members and the two that join. */
const NODES_MAX = 5;
/** Each bound is far above what the step takes on a loaded 2-core machine: reaching one is a failure, not a result. */
const CATCH_UP_TIMEOUT_MS = 180_000;

const fs = new NodeFileSystem();

interface ChangeTimes {
  /** From the add request until the learner applied the leader's commit index at the add. */
  catchUpSeconds: number;
  /** Payload of the snapshot the learner installed. */
  snapshotBytes: number;
  /** From the add request until the learner logged that it installed the snapshot. */
  snapshotSeconds: number;
  snapshotMegabytesPerSecond: number;
  /** From the first promote request (once caught up) until it was answered. */
  promoteSeconds: number;
}

interface Round {
  stateBytes: number;
  loadSeconds: number;
  leaderSnapshotIndex: number;
  idle: ChangeTimes;
  underLoad: ChangeTimes;
  dip: ThroughputDip;
  writesPerSecond: number[];
  change: { startSecond: number; endSecond: number };
  loadErrors: number;
}

/** Loads STATE_BYTES of 16 KiB values with STATE_WRITERS writers; returns the seconds it took. */
function loadMembershipState(endpoints: string[]): Promise<number> {
  return loadState(endpoints, { keys: Math.ceil(STATE_BYTES / STATE_VALUE_BYTES), valueBytes: STATE_VALUE_BYTES, writers: STATE_WRITERS });
}

/** The learner's "installed a snapshot from the leader" log line: its time (epoch ms) and index. */
async function snapshotInstalled(cluster: LocalCluster, id: number): Promise<{ timeMs: number; index: number } | undefined> {
  const [first] = await logLines(cluster, id, "installed a snapshot from the leader");
  return first === undefined ? undefined : { timeMs: first.time, index: first.index as number };
}

/** Promotes learner `id`, retrying while the leader says it is still behind. */
async function promote(cluster: LocalCluster, id: number): Promise<void> {
  await until(`node ${id} to be promoted`, async () => {
    try {
      await cluster.promote(id);
      return true;
    } catch (error) {
      if (error instanceof KvError && error.code === "RAFT_ERR_LEARNER_BEHIND") return undefined;
      throw error;
    }
  }, CATCH_UP_TIMEOUT_MS);
}

/**
 * Adds node `spec` (started, waiting to be added) as a learner, waits until it caught up,
 * promotes it; times each step.
 */
async function addAndPromote(cluster: LocalCluster, spec: LocalNodeSpec): Promise<ChangeTimes> {
  const target = (await cluster.status(await cluster.waitForLeader()))!.commitIndex;
  const addedMs = Date.now();
  const added = performance.now();
  await cluster.addLearner(spec.id);
  await until(`node ${spec.id} to catch up`, async () => ((await cluster.status(spec.id))?.appliedIndex ?? 0) >= target || undefined, CATCH_UP_TIMEOUT_MS);
  const catchUpSeconds = (performance.now() - added) / 1000;
  const installed = await until(`node ${spec.id}'s snapshot log line`, () => snapshotInstalled(cluster, spec.id), 10_000);
  const snapshots = await listSnapshotFiles(fs, join(spec.dataDir, "snap"), { verifyPayload: false });
  const snapshotBytes = snapshots.find((snapshot) => snapshot.index === installed.index)?.meta?.sizeBytes ?? NaN;
  const snapshotSeconds = (installed.timeMs - addedMs) / 1000;
  const promoting = performance.now();
  await promote(cluster, spec.id);
  const promoteSeconds = (performance.now() - promoting) / 1000;
  return { catchUpSeconds, snapshotBytes, snapshotSeconds, snapshotMegabytesPerSecond: snapshotBytes / 1e6 / snapshotSeconds, promoteSeconds };
}

/** The change of step 2, under the steady load, with the load's per-second throughput around it. */
async function changeUnderLoad(cluster: LocalCluster, joining: LocalNodeSpec): Promise<Pick<Round, "underLoad" | "dip" | "writesPerSecond" | "change" | "loadErrors">> {
  const endpoints = cluster.specs.filter((spec) => spec.id !== joining.id).map((spec) => spec.apiUrl);
  const load = new SteadyWriteLoad({ endpoints, clients: LOAD_CLIENTS, valueBytes: LOAD_VALUE_BYTES, keys: LOAD_KEYS });
  load.start();
  let underLoad: ChangeTimes;
  let change: { startSecond: number; endSecond: number };
  let loadSeconds: number;
  try {
    await sleep((WARMUP_SECONDS + STEADY_SECONDS) * 1000);
    const startSecond = load.secondsSinceStart();
    underLoad = await addAndPromote(cluster, joining);
    change = { startSecond, endSecond: load.secondsSinceStart() };
    await sleep(STEADY_SECONDS * 1000);
  } finally {
    loadSeconds = await load.stop();
  }
  const dip = throughputDip(load.writesPerSecond, { warmupSeconds: WARMUP_SECONDS, changeStartSecond: change.startSecond, changeEndSecond: change.endSecond, loadSeconds });
  return { underLoad, dip, writesPerSecond: load.writesPerSecond, change, loadErrors: load.errors };
}

async function runRound(round: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), "raftwal-bench-membership-"));
  const cluster = new LocalCluster({
    nodes: 3,
    dir,
    basePort: await findFreeBasePort(NODES_MAX),
    logs: "file",
    // One snapshot, once the state is loaded: none by entry count, one by WAL bytes just under the load.
    nodeArgs: ["--snapshot-every", String(2 ** 31 - 1), "--snapshot-every-bytes", String(Math.floor(STATE_BYTES * 0.97))],
  });
  try {
    await cluster.start();
    const leader = await cluster.waitForLeader(30_000);
    const members = cluster.specs.map((spec) => spec.apiUrl);
    // The two nodes that join start now, waiting to be added: they hold their ports (a
    // client's ephemeral port could take a free one later), and a process starting takes
    // CPU that is no part of a change.
    const [fourth, fifth] = [await cluster.joinNode({ ask: false }), await cluster.joinNode({ ask: false })];
    const loadSeconds = await loadMembershipState(members);
    // Every member snapshots the state once: wait for all, so that no snapshot write falls into a measurement.
    const snapshotIndexes = await Promise.all(
      cluster.specs.filter((spec) => spec.id < fourth.id).map((spec) => until(`node ${spec.id}'s snapshot`, async () => (await cluster.status(spec.id))?.snapshotIndex || undefined, 60_000)),
    );
    const leaderSnapshotIndex = snapshotIndexes[leader - 1];
    console.log(`round ${round}: ${(STATE_BYTES / 1e6).toFixed(0)} MB loaded in ${loadSeconds.toFixed(1)} s; the leader snapshotted at index ${leaderSnapshotIndex}`);
    const idle = await addAndPromote(cluster, fourth);
    // The new voter applies what it received and the old ones let go of the transfer before the load starts.
    await sleep(SETTLE_SECONDS * 1000);
    const loaded = await changeUnderLoad(cluster, fifth);
    return { stateBytes: STATE_BYTES, loadSeconds, leaderSnapshotIndex, idle, ...loaded };
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function format(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

function row(label: string, rounds: Round[]): Record<string, string> {
  const m = (pick: (r: Round) => number, digits = 1) => format(median(rounds.map(pick)), digits);
  return {
    round: label,
    "snapshot MB": m((r) => r.idle.snapshotBytes / 1e6),
    "catch-up s": m((r) => r.idle.catchUpSeconds, 2),
    "snapshot MB/s": m((r) => r.idle.snapshotMegabytesPerSecond),
    "promote s": m((r) => r.idle.promoteSeconds, 3),
    "catch-up s (load)": m((r) => r.underLoad.catchUpSeconds, 2),
    "MB/s (load)": m((r) => r.underLoad.snapshotMegabytesPerSecond),
    "promote s (load)": m((r) => r.underLoad.promoteSeconds, 3),
    "writes/s before": m((r) => r.dip.beforeMedian, 0),
    "during min": m((r) => r.dip.duringMin, 0),
    "during mean": m((r) => r.dip.duringMean, 0),
    "after": m((r) => r.dip.afterMedian, 0),
    "dip (min/before)": m((r) => r.dip.dipRatio, 2),
    "mean/before": m((r) => r.dip.duringMeanRatio, 2),
  };
}

async function main(): Promise<void> {
  console.log(`raftwal membership benchmark: ${ROUNDS} round(s), ${(STATE_BYTES / 1e6).toFixed(0)} MB of state, steady load of ${LOAD_CLIENTS} writers`);
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const result = await runRound(round);
    rounds.push(result);
    console.log(`round ${round}: writes/s per second ${result.writesPerSecond.join(" ")} (change from ${format(result.change.startSecond)} s to ${format(result.change.endSecond)} s)`);
  }
  console.table([...rounds.map((r, i) => row(String(i + 1), [r])), ...(rounds.length > 1 ? [row("median", rounds)] : [])]);
  const path = writeResults("membership", { date: new Date().toISOString(), stateBytes: STATE_BYTES, loadClients: LOAD_CLIENTS, loadValueBytes: LOAD_VALUE_BYTES, rounds });
  console.log(`results written to ${path}`);
}

await main();
