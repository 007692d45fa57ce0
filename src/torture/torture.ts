/**
 * `raftwal torture`: a real cluster of `raftwal node` processes under client load while
 * a nemesis kills, pauses, partitions and damages it; then the checks.
 *
 * A run, step by step:
 *   1. The seed is chosen (or given) and reported first; the whole fault schedule is drawn
 *      from it (nemesis.ts) before anything starts.
 *   2. The cluster starts (every node with --fault-injection, small WAL segments, a small
 *      snapshot interval, and --fault-power-loss when the powerloss nemesis is on).
 *   3. Safety phase (`durationMs`): the workload runs, the nemesis runs its schedule.
 *   4. Heal everything: resume, un-partition, restart what is down.
 *   5. Liveness phase: a leader and a successful write within LIVENESS_BOUND_MS, then the
 *      workload runs on without faults for `livenessMs`.
 *   6. The workload stops; the nodes must converge (same applied index and state hash);
 *      every key is read linearizably (recorded in the history) and from every node.
 *   7. The checks (checks.ts) judge; the report, history.jsonl and faults.txt go to the run
 *      directory, which is kept when asked or when a check fails, and removed otherwise.
 */
import { randomInt, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { KvClient } from "../kv/client.js";
import { findFreeBasePort, LocalCluster } from "../cli/local-cluster.js";
import { checkConvergence, checkFinalReadsAgree, checkLinearizability, checkLiveness, checkMembership, checkNoLostWrites, checkRunEvents, type NodeStateSample, type Verdict } from "./checks.js";
import { RunEvents } from "./events.js";
import { FaultRunner } from "./faults.js";
import { History } from "./history.js";
import { planFaults, type FaultStep, type NemesisGroup } from "./nemesis.js";
import { renderFaultLog, renderReport } from "./report.js";
import { delay } from "./node-control.js";
import { Workload } from "./workload.js";

export interface TortureOptions {
  nodes: number;
  /** Length of the safety phase (faults on). */
  durationMs: number;
  seed?: number;
  groups: NemesisGroup[];
  clients: number;
  /** Keep the run directory here (always kept). Default: a temp dir kept only on failure. */
  keepDir?: string;
  tickMs: number;
  /** Snapshot interval (entries) of odd-numbered nodes; even-numbered ones snapshot LONG_LOG_SNAPSHOT_FACTOR times less often. */
  snapshotEvery: number;
  keys: number;
  /** WAL segment size of the nodes. Default TORTURE_WAL_SEGMENT_BYTES. */
  walSegmentBytes?: number;
  /** Length of the liveness phase's workload. Default: 15% of the safety phase, 2 to 10 s. */
  livenessMs?: number;
  /** Linearizability search budget per key. */
  stepsMax?: number;
  /** Pause between one worker's operations. */
  thinkTimeMs?: number;
  /** Progress lines (stderr). */
  progress?: (line: string) => void;
  /** The disk nemesis also damages what open bugs cannot repair yet (TORTURE.md, "Known bugs"). Default false. */
  /** Report lines (stdout). */
  out: (text: string) => void;
  /** The command that replays this run (printed in the report); the seed is appended. */
  replayCommand?: string;
}

export interface TortureResult {
  seed: number;
  ok: boolean;
  verdicts: Verdict[];
  report: string;
  dir: string;
  kept: boolean;
  schedule: FaultStep[];
}

/** After healing, a write must succeed within this bound. */
export const LIVENESS_BOUND_MS = 20_000;
/** The nodes must converge within this bound once the workload stopped. */
export const CONVERGENCE_BOUND_MS = 20_000;
/** WAL segment size the nodes run with: the smallest allowed, so sealed segments exist to damage. */
export const TORTURE_WAL_SEGMENT_BYTES = 65_536;
/**
 * Even-numbered nodes snapshot this many times less often: their logs span several sealed
 * segments (damage in the middle of the log; a leader reading old entries back from disk),
 * while odd-numbered ones compact often (damaged snapshots, catch-ups by snapshot).
 */
export const LONG_LOG_SNAPSHOT_FACTOR = 20;
/** Entries each node's WAL caches: few, so a leader serving a lagging follower reads the entries back from its segments. */
export const TORTURE_WAL_CACHE_ENTRIES = 64;
/** Client operation timeout, retries included: long enough to ride out an election. */
const OPERATION_TIMEOUT_MS = 4_000;
const PROGRESS_EVERY_MS = 1_000;
const MONITOR_EVERY_MS = 500;

/** Everything one run holds while it runs. */
interface TortureRun {
  options: TortureOptions;
  seed: number;
  dir: string;
  clock: () => number;
  history: History;
  events: RunEvents;
  cluster: LocalCluster;
  keys: string[];
  workload: Workload;
  faults: FaultRunner;
  monitor: StatusMonitor;
  livenessMs: number;
  /** For the progress line. */
  phase: string;
  /** Length of the safety phase actually run (0 if it did not end). */
  safetyMs: number;
}

export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  // 1. The seed first, then the whole schedule drawn from it.
  const seed = options.seed ?? randomInt(1, 2 ** 31);
  options.out(`seed ${seed}\n`);
  const schedule = planFaults({ seed, durationMs: options.durationMs, groups: options.groups });
  const dir = options.keepDir ?? mkdtempSync(join(tmpdir(), "raftwal-torture-"));
  mkdirSync(dir, { recursive: true });
  const run = await prepareRun(options, seed, dir);
  const progress = setInterval(() => options.progress?.(progressLine(run)), PROGRESS_EVERY_MS);
  const verdicts: Verdict[] = [];
  try {
    await runPhases(run, schedule, verdicts);
  } catch (error) {
    verdicts.push({ name: "run completed", status: "fail", detail: `the run stopped early: ${(error as Error).message}` });
  } finally {
    clearInterval(progress);
    await tearDown(run);
  }
  const ok = !verdicts.some((verdict) => verdict.status === "fail");
  const kept = options.keepDir !== undefined || !ok;
  const report = renderReport({
    seed,
    nodes: options.nodes,
    clients: options.clients,
    groups: options.groups,
    safetyMs: run.safetyMs,
    livenessMs: run.livenessMs,
    history: run.history,
    events: run.events,
    leaderChanges: run.monitor.leaderChanges,
    maxTerm: run.monitor.maxTerm,
    verdicts,
    dir: kept ? dir : `${dir} (removed: every check passed; --keep DIR keeps it)`,
    replay: `${options.replayCommand ?? "raftwal torture"} --seed ${seed}`,
  });
  if (kept) writeRunFiles(run, schedule, report);
  else rmSync(dir, { recursive: true, force: true });
  options.out(report);
  return { seed, ok, verdicts, report, dir, kept, schedule };
}

/** Builds the cluster (not started yet), the workload and the nemesis of a run. */
async function prepareRun(options: TortureOptions, seed: number, dir: string): Promise<TortureRun> {
  const powerLoss = options.groups.includes("powerloss");
  const started = performance.now();
  const clock = () => performance.now() - started;
  const history = new History(clock);
  const events = new RunEvents(clock);
  const longLog = (id: number) => id % 2 === 0;
  const cluster = new LocalCluster({
    nodes: options.nodes,
    dir,
    basePort: await findFreeBasePort(options.nodes),
    logs: "file",
    // Nodes that join later (the membership nemesis) get the same flags.
    nodeArgs: (id) => [
      "--tick-ms", String(options.tickMs),
      "--snapshot-every", String(options.snapshotEvery * (longLog(id) ? LONG_LOG_SNAPSHOT_FACTOR : 1)),
      "--fault-injection",
      "--fault-wal-segment-bytes", String(options.walSegmentBytes ?? TORTURE_WAL_SEGMENT_BYTES),
      "--fault-wal-cache-entries", String(TORTURE_WAL_CACHE_ENTRIES),
      ...(powerLoss ? ["--fault-power-loss"] : []),
    ],
  });
  const keys = Array.from({ length: options.keys }, (_, k) => `k${k}`);
  const workload = new Workload({
    endpoints: cluster.specs.map((spec) => spec.apiUrl),
    clients: options.clients,
    keys,
    history,
    seed,
    runId: randomUUID().slice(0, 8),
    operationTimeoutMs: OPERATION_TIMEOUT_MS,
    thinkTimeMs: options.thinkTimeMs ?? 10,
  });
  const faults = new FaultRunner({
    cluster,
    events,
    powerLoss,
    dir,
    longLog,
    setEndpoints: (apiUrls) => workload.setEndpoints(apiUrls),
  });
  const monitor = new StatusMonitor(cluster);
  const livenessMs = options.livenessMs ?? Math.min(10_000, Math.max(2_000, Math.round(options.durationMs * 0.15)));
  return { options, seed, dir, clock, history, events, cluster, keys, workload, faults, monitor, livenessMs, phase: "starting", safetyMs: 0 };
}

function progressLine({ clock, phase, history, monitor, events }: TortureRun): string {
  const counts = history.counts();
  return `[${(clock() / 1000).toFixed(0)}s] ${phase}: ops ${counts.total} (ok ${counts.ok}, unknown ${counts.unknown}, failed ${counts.failed}) | leader ${monitor.leader ? `n${monitor.leader}` : "-"} term ${monitor.maxTerm} | faults ${events.faults.length}${events.current ? ` now: ${events.current}` : ""}`;
}

/** Steps 2 to 7, each verdict pushed as soon as it is known. */
async function runPhases(run: TortureRun, schedule: FaultStep[], verdicts: Verdict[]): Promise<void> {
  const { cluster, history, workload, faults, monitor } = run;
  // 2. Start.
  await cluster.start();
  await cluster.waitForLeader(LIVENESS_BOUND_MS);
  monitor.start();
  // 3. Safety phase.
  run.phase = "safety";
  const safetyStarted = Date.now();
  const deadline = safetyStarted + run.options.durationMs;
  workload.start();
  await faults.run(schedule, deadline);
  while (Date.now() < deadline) await delay(Math.min(200, deadline - Date.now()));
  run.safetyMs = Date.now() - safetyStarted;
  // 4. Heal.
  run.phase = "healing";
  faults.stop();
  await faults.healAll();
  // 5. Liveness.
  run.phase = "liveness";
  history.phase = "liveness";
  verdicts.push(checkLiveness(await probeLiveness(cluster, cluster.specs.map((spec) => spec.apiUrl))));
  await delay(run.livenessMs);
  // 6. Stop the workload, converge (the final members), read everything.
  run.phase = "converging";
  await workload.stop();
  monitor.stop();
  const expected = cluster.specs.map((spec) => spec.id);
  const samples = await waitForConvergence(cluster, expected);
  const finalMembers = await faults.membership.fetchMembers();
  run.phase = "final reads";
  history.phase = "final";
  const { finalValues, nodeReads } = await readEverything(run, expected);
  // 7. Judge.
  run.phase = "checking";
  verdicts.push(checkLinearizability(history.operations(), run.options.stepsMax ?? 5_000_000));
  verdicts.push(checkNoLostWrites(history.operations(), finalValues));
  verdicts.push(checkConvergence(samples, expected));
  verdicts.push(checkFinalReadsAgree(nodeReads));
  verdicts.push(checkMembership({ asked: faults.membership.members, actual: finalMembers, running: expected, removals: run.events.removals }));
  verdicts.push(checkRunEvents(run.events));
}

/**
 * Step 6's reads: every key linearizably (recorded in the history), and every key from each
 * expected node. A key the linearizable read could not get takes the first node's value.
 */
async function readEverything(
  { workload, cluster, keys }: TortureRun,
  expected: number[],
): Promise<{ finalValues: Map<string, string | null>; nodeReads: Map<number, Map<string, string | null>> }> {
  const finalValues = new Map<string, string | null>();
  for (const key of keys) {
    const value = await workload.readOnce("final-reader", key);
    if (value !== undefined) finalValues.set(key, value);
  }
  const nodeReads = new Map<number, Map<string, string | null>>();
  for (const id of expected) nodeReads.set(id, await staleReads(cluster.spec(id).apiUrl, keys));
  for (const key of keys) {
    if (!finalValues.has(key)) {
      const fromNode = nodeReads.get(expected[0])?.get(key);
      if (fromNode !== undefined) finalValues.set(key, fromNode);
    }
  }
  return { finalValues, nodeReads };
}

/** Stops everything the run started, whatever state it stopped in. */
async function tearDown({ monitor, faults, workload, cluster }: TortureRun): Promise<void> {
  monitor.stop();
  faults.stop();
  faults.control.close();
  await workload.stop().catch(() => undefined);
  workload.close();
  for (const spec of cluster.specs) cluster.signal(spec.id, "SIGCONT");
  await cluster.stop();
}

function writeRunFiles({ dir, history, events, seed, options }: TortureRun, schedule: FaultStep[], report: string): void {
  writeFileSync(join(dir, "history.jsonl"), history.toJsonLines());
  writeFileSync(join(dir, "faults.txt"), renderFaultLog(events));
  writeFileSync(join(dir, "schedule.json"), JSON.stringify({ seed, groups: options.groups, durationMs: options.durationMs, steps: schedule }, null, 1));
  writeFileSync(join(dir, "report.txt"), report);
}

/** After healing: how long until a leader is agreed and a write succeeds (bounded). */
async function probeLiveness(cluster: LocalCluster, endpoints: string[]): Promise<{ leaderAfterMs?: number; writeAfterMs?: number; boundMs: number; error?: string }> {
  const started = Date.now();
  let leaderAfterMs: number | undefined;
  try {
    await cluster.waitForLeader(LIVENESS_BOUND_MS);
    leaderAfterMs = Date.now() - started;
  } catch (error) {
    return { boundMs: LIVENESS_BOUND_MS, error: (error as Error).message };
  }
  const client = new KvClient({ endpoints, operationTimeoutMs: Math.max(1, LIVENESS_BOUND_MS - (Date.now() - started)), requestTimeoutMs: 2000 });
  try {
    await client.put("torture-liveness-probe", String(started));
    return { leaderAfterMs, writeAfterMs: Date.now() - started, boundMs: LIVENESS_BOUND_MS };
  } catch (error) {
    return { leaderAfterMs, boundMs: LIVENESS_BOUND_MS, error: (error as Error).message };
  } finally {
    client.close();
  }
}

/** Polls /admin/hash until every expected node reports the same applied index and hash, or the bound passes. */
async function waitForConvergence(cluster: LocalCluster, expected: number[]): Promise<NodeStateSample[]> {
  const deadline = Date.now() + CONVERGENCE_BOUND_MS;
  let samples: NodeStateSample[] = [];
  while (Date.now() < deadline) {
    samples = (await Promise.all(expected.map((id) => stateSample(cluster.spec(id).apiUrl)))).filter((s): s is NodeStateSample => s !== undefined);
    if (samples.length === expected.length && checkConvergence(samples, expected).status === "pass") return samples;
    await delay(100);
  }
  return samples;
}

async function stateSample(apiUrl: string): Promise<NodeStateSample | undefined> {
  try {
    const response = await fetch(`${apiUrl}/admin/hash`, { signal: AbortSignal.timeout(2000) });
    if (response.status !== 200) return undefined;
    const body = (await response.json()) as { id: number; appliedIndex: number; hash: string };
    return { id: body.id, appliedIndex: body.appliedIndex, hash: body.hash };
  } catch {
    return undefined;
  }
}

/** What one node itself holds for every key (`?stale=true`: no leadership check). */
async function staleReads(apiUrl: string, keys: string[]): Promise<Map<string, string | null>> {
  const values = new Map<string, string | null>();
  for (const key of keys) {
    try {
      const response = await fetch(`${apiUrl}/kv/${encodeURIComponent(key)}?stale=true`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) values.set(key, await response.text());
      else if (response.status === 404) values.set(key, null);
    } catch {
      // No answer: left out (the agreement check shows it).
    }
  }
  return values;
}

/** Polls every running node's /status: leader changes and the highest term, for the report and the progress line. */
class StatusMonitor {
  leader = 0;
  leaderChanges = 0;
  maxTerm = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly cluster: LocalCluster) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), MONITOR_EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const statuses = await Promise.all(this.cluster.specs.filter((spec) => this.cluster.isRunning(spec.id)).map((spec) => this.cluster.status(spec.id)));
      for (const status of statuses) {
        if (!status) continue;
        this.maxTerm = Math.max(this.maxTerm, status.term);
        if (status.role === "leader" && status.id !== this.leader) {
          if (this.leader !== 0) this.leaderChanges++;
          this.leader = status.id;
        }
      }
    } finally {
      this.polling = false;
    }
  }
}
