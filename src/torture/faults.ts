/**
 * Runs the nemesis schedule (nemesis.ts) against a LocalCluster: resolves each step's
 * targets ("the leader", "a follower") at the moment it runs, injects the fault, holds it,
 * heals it, and records what happened in RunEvents. Every wait is bounded.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LocalCluster } from "../cli/local-cluster.js";
import { seededRandom } from "../rng.js";
import { damage, durableHardState, restore, unchanged, type DamageTarget } from "./disk-damage.js";
import type { RunEvents } from "./events.js";
import { choose, type FaultStep } from "./nemesis.js";

/** A restarted node must answer its API within this time (recovery replays the WAL). */
export const RESTART_TIMEOUT_MS = 20_000;
/** A node told to tear its writes must be gone within this time (then it is killed). */
const TEAR_EXIT_TIMEOUT_MS = 5_000;
/** How long the snapshot step waits for the others to compact past the stopped node's log. */
const COMPACTION_WAIT_MS = 20_000;
/** How long a restarted node gets to catch up with the leader's commit index. */
const CATCH_UP_TIMEOUT_MS = 20_000;
/** How long to look for a leader before a step that needs one picks any running node. */
const LEADER_WAIT_MS = 3_000;
const POLL_MS = 50;
/** Bound on waiting for a node's log lines to reach its log file. */
const LOG_FLUSH_WAIT_MS = 3_000;

export interface FaultRunnerOptions {
  cluster: LocalCluster;
  events: RunEvents;
  /** Nodes run with --fault-power-loss: every kill -9 loses what was not fsynced. */
  powerLoss: boolean;
  /** The run's directory (node logs are `<dir>/node-<id>.log`). */
  dir: string;
}

export class FaultRunner {
  private stopping = false;
  private readonly ids: number[];

  constructor(private readonly options: FaultRunnerOptions) {
    this.ids = options.cluster.specs.map((spec) => spec.id);
  }

  /** Runs the steps in order until the schedule ends or `deadline` (Date.now() ms) passes. */
  async run(steps: readonly FaultStep[], deadline: number): Promise<void> {
    for (const step of steps) {
      if (this.stopping || Date.now() + step.delayBeforeMs >= deadline) break;
      await this.sleep(step.delayBeforeMs);
      if (this.stopping) break;
      await this.runStep(step);
    }
  }

  /** Makes `run` stop after the step in progress (which still heals what it did). */
  stop(): void {
    this.stopping = true;
  }

  /** Undoes every fault: resumes paused nodes, heals partitions, starts stopped nodes (not those stopped by design). */
  async healAll(): Promise<void> {
    const { cluster, events } = this.options;
    for (const id of this.ids) if (cluster.isRunning(id)) cluster.signal(id, "SIGCONT");
    for (const id of this.ids) {
      if (!cluster.isRunning(id) && !events.stoppedByDesign.has(id)) await this.restart(id, "heal");
    }
    await this.setPartition(new Map());
  }

  private async runStep(step: FaultStep): Promise<void> {
    switch (step.kind) {
      case "kill-leader":
        return this.killAndRestart(step, [await this.leaderOrAny(step)]);
      case "kill-follower":
        return this.killAndRestart(step, choose(await this.followers(step), 1, step.picks));
      case "kill-majority":
        return this.killAndRestart(step, choose(this.running(), Math.floor(this.ids.length / 2) + 1, step.picks));
      case "kill-all":
      case "powerloss-all":
        return this.killAndRestart(step, this.running());
      case "powerloss-node":
        return this.killAndRestart(step, choose(this.running(), 1, step.picks));
      case "tear-node":
        return this.tear(step);
      case "pause-leader":
        return this.pause(step);
      case "partition-isolate":
      case "partition-split":
      case "partition-bridge":
        return this.partition(step);
      case "disk-wal":
        return this.disk(step, "wal");
      case "disk-hardstate":
        return this.disk(step, "hardstate");
      case "disk-snapshot":
        return this.disk(step, "snapshot");
      case "snapshot-catchup":
        return this.snapshotCatchUp(step);
    }
  }

  // ---- kills and pauses ---------------------------------------------------------------

  private async killAndRestart(step: FaultStep, targets: number[]): Promise<void> {
    if (targets.length === 0) return;
    const { cluster, events } = this.options;
    const record = events.begin(step.index, step.kind, targets);
    await Promise.all(targets.map((id) => cluster.kill(id, "SIGKILL")));
    await this.sleep(step.durationMs);
    const results = await Promise.all(targets.map((id) => this.restart(id, step.kind)));
    events.end(record, results.every(Boolean) ? (this.options.powerLoss ? "power cut, restarted" : "killed, restarted") : "a node did not come back");
  }

  private async tear(step: FaultStep): Promise<void> {
    const { cluster, events } = this.options;
    const [id] = choose(this.running(), 1, step.picks);
    if (id === undefined) return;
    const record = events.begin(step.index, step.kind, [id]);
    try {
      await fetch(`${cluster.spec(id).apiUrl}/admin/tear?seed=${step.seed}`, { method: "POST", signal: AbortSignal.timeout(2000) });
    } catch {
      // The node may vanish before the answer arrives.
    }
    const gone = await this.waitUntil(TEAR_EXIT_TIMEOUT_MS, async () => !cluster.isRunning(id));
    if (!gone) {
      events.note(`n${id} did not exit after /admin/tear; killed`);
      await cluster.kill(id, "SIGKILL");
    }
    await this.sleep(step.durationMs);
    const back = await this.restart(id, step.kind);
    events.end(record, back ? "torn write-back, restarted" : "did not come back");
  }

  private async pause(step: FaultStep): Promise<void> {
    const { cluster, events } = this.options;
    const leader = await this.leaderOrAny(step);
    const record = events.begin(step.index, step.kind, [leader]);
    cluster.signal(leader, "SIGSTOP");
    await this.sleep(step.durationMs);
    cluster.signal(leader, "SIGCONT");
    events.end(record, "resumed");
  }

  // ---- partitions ---------------------------------------------------------------------

  private async partition(step: FaultStep): Promise<void> {
    const { events } = this.options;
    const order = choose(this.ids, this.ids.length, step.picks.concat(step.picks));
    const blocks = new Map<number, number[]>();
    const cut = (a: number[], b: number[]) => {
      for (const x of a) blocks.set(x, [...(blocks.get(x) ?? []), ...b]);
      for (const y of b) blocks.set(y, [...(blocks.get(y) ?? []), ...a]);
    };
    let description: string;
    if (step.kind === "partition-isolate") {
      const [victim, ...rest] = order;
      cut([victim], rest);
      description = `n${victim} | ${rest.map((id) => `n${id}`).join(",")}`;
    } else if (step.kind === "partition-split") {
      // A minority that holds the current leader half of the time: its writes must not commit.
      const leader = await this.leader();
      const minoritySize = 1 + Math.floor(step.picks[2] * Math.floor((this.ids.length - 1) / 2));
      let minority = order.slice(0, minoritySize);
      if (leader !== undefined && step.picks[3] < 0.5 && !minority.includes(leader)) minority = [leader, ...minority.slice(1)];
      const majority = this.ids.filter((id) => !minority.includes(id));
      cut(minority, majority);
      description = `${minority.map((id) => `n${id}`).join(",")} | ${majority.map((id) => `n${id}`).join(",")}`;
    } else {
      // A bridge: one node talks to both sides, which cannot talk to each other.
      const [bridge, ...rest] = order;
      const half = Math.max(1, Math.floor(rest.length / 2));
      const left = rest.slice(0, half);
      const right = rest.slice(half);
      cut(left, right);
      description = `${left.map((id) => `n${id}`).join(",")} <- n${bridge} -> ${right.map((id) => `n${id}`).join(",")}`;
    }
    const record = events.begin(step.index, step.kind, order);
    events.current = `${step.kind} ${description}`;
    await this.setPartition(blocks);
    await this.sleep(step.durationMs);
    await this.setPartition(new Map());
    events.end(record, `healed (${description})`);
  }

  /** Sends every running node its blocked peers (nodes not in `blocks` get none). */
  private async setPartition(blocks: Map<number, number[]>): Promise<void> {
    const { cluster, events } = this.options;
    await Promise.all(
      this.running().map(async (id) => {
        const blockPeers = [...new Set(blocks.get(id) ?? [])];
        try {
          const response = await fetch(`${cluster.spec(id).apiUrl}/admin/faults`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ blockPeers }),
            signal: AbortSignal.timeout(2000),
          });
          if (response.status !== 200) events.note(`n${id}: /admin/faults answered ${response.status}`);
        } catch (error) {
          events.note(`n${id}: /admin/faults failed: ${(error as Error).message}`);
        }
      }),
    );
  }

  // ---- storage damage -----------------------------------------------------------------

  private async disk(step: FaultStep, wanted: DamageTarget): Promise<void> {
    const { cluster, events } = this.options;
    // A follower: the rest of the cluster (leader included) keeps serving meanwhile.
    const [id] = choose(await this.followers(step), 1, step.picks);
    if (id === undefined) return;
    const record = events.begin(step.index, step.kind, [id]);
    await cluster.kill(id, "SIGKILL");
    const dataDir = cluster.spec(id).dataDir;
    const durable = await durableHardState(dataDir).catch(() => undefined);
    const random = seededRandom(step.seed);
    let damaged = await damage(dataDir, wanted, random);
    if (!damaged && wanted !== "hardstate") {
      events.note(`${step.kind}: n${id} has no ${wanted} file to damage yet; damaged its hard state instead`);
      damaged = await damage(dataDir, "hardstate", random);
    }
    if (!damaged) {
      await this.restart(id, step.kind);
      events.end(record, "nothing to damage (fresh node), restarted");
      return;
    }
    events.note(`n${id}: flipped ${damaged.describe}`);
    const logFrom = this.logSize(id);
    const started = await this.start(id);
    const log = await this.logSinceEventually(id, logFrom, started.ok ? /"serving"/ : /raftwal: /);
    const fileName = damaged.path.split("/").pop()!;
    if (!started.ok) {
      // Stopped by design: the failure must be loud, name the file and the position, and modify nothing.
      const named = log.includes(fileName) || (damaged.target === "hardstate" && log.includes("hard-state"));
      const positioned = damaged.recordOffset === undefined || log.includes(`offset ${damaged.recordOffset}`) || log.includes(String(damaged.byteOffset));
      if (started.exitCode === 0) events.violation(`n${id} exited with code 0 on damaged storage (${damaged.describe})`);
      if (!named || !positioned) events.violation(`n${id} stopped on ${damaged.describe} but its log does not name the ${named ? "position" : "file"}: ${lastLines(log, 3)}`);
      else events.damageDetected++;
      if (!unchanged(damaged)) events.violation(`n${id} modified the damaged file ${damaged.path} while refusing to start (${damaged.describe})`);
      // The operator's repair: the file restored from a backup (the bit flipped back).
      restore(damaged);
      const back = await this.restart(id, `${step.kind} repair`);
      if (!back) events.stoppedByDesign.add(id);
      events.end(record, back ? `refused to start (exit ${started.exitCode}), repaired, restarted` : "refused to start; repair failed, left down");
      return;
    }
    // It started: the damage must have been detected and reported (a warning naming the file).
    events.recoveries++;
    if (!log.includes(fileName)) events.violation(`n${id} started on ${damaged.describe} without reporting it: ${lastLines(log, 3)}`);
    else events.damageDetected++;
    const status = await cluster.status(id);
    if (durable && status && status.term < durable.term) {
      events.violation(`n${id} came back with term ${status.term}, below its durable term ${durable.term}, after ${damaged.describe}`);
    }
    events.end(record, "started, damage reported");
  }

  // ---- catch-up from a snapshot -------------------------------------------------------

  private async snapshotCatchUp(step: FaultStep): Promise<void> {
    const { cluster, events } = this.options;
    const [id] = choose(await this.followers(step), 1, step.picks);
    if (id === undefined) return;
    const record = events.begin(step.index, step.kind, [id]);
    const before = await cluster.status(id);
    const lastIndex = before?.lastIndex ?? 0;
    await cluster.kill(id, "SIGKILL");
    // Keep it down until every other running node has a snapshot past its log (bounded).
    const compacted = await this.waitUntil(COMPACTION_WAIT_MS, async () => {
      if (this.stopping) return true;
      const others = await Promise.all(this.running().map((other) => cluster.status(other)));
      return others.length > 0 && others.every((status) => status !== undefined && status.snapshotIndex > lastIndex);
    });
    if (!compacted) events.note(`snapshot-catchup: the others did not compact past n${id}'s last index ${lastIndex} within ${COMPACTION_WAIT_MS} ms`);
    const logFrom = this.logSize(id);
    if (!(await this.restart(id, step.kind))) {
      events.end(record, "did not come back");
      return;
    }
    const leader = await this.leader();
    const target = leader === undefined ? 0 : ((await cluster.status(leader))?.commitIndex ?? 0);
    const caughtUp = await this.waitUntil(CATCH_UP_TIMEOUT_MS, async () => ((await cluster.status(id))?.appliedIndex ?? 0) >= target);
    const viaSnapshot = this.logSince(id, logFrom).includes("installed a snapshot from the leader");
    if (viaSnapshot) events.snapshotCatchUps++;
    events.end(record, `${caughtUp ? "caught up" : "not caught up yet"} ${viaSnapshot ? "through a snapshot" : "from the log"} (was at ${lastIndex}, target ${target})`);
  }

  // ---- helpers ------------------------------------------------------------------------

  /** Starts a stopped node and waits for its API; records a recovery or a violation. */
  private async restart(id: number, why: string): Promise<boolean> {
    const { events } = this.options;
    const logFrom = this.logSize(id);
    const started = await this.start(id);
    const log = await this.logSinceEventually(id, logFrom, started.ok ? /"serving"/ : /raftwal: /);
    const torn = (log.match(/"tornTail":\{/g) ?? []).length;
    events.tornTailsRepaired += torn;
    if (started.ok) {
      events.recoveries++;
      return true;
    }
    events.violation(`n${id} did not come back after ${why} (exit ${started.exitCode}): ${lastLines(log, 3)}`);
    return false;
  }

  /** Starts node `id`; resolves when its API answers, or with its exit code if it exits first. */
  private async start(id: number): Promise<{ ok: true } | { ok: false; exitCode: number | null }> {
    const { cluster } = this.options;
    if (cluster.isRunning(id)) return { ok: true };
    const child = cluster.startNode(id);
    let exit: { code: number | null } | undefined;
    child.once("exit", (code) => (exit = { code }));
    const deadline = Date.now() + RESTART_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exit) return { ok: false, exitCode: exit.code };
      if (await cluster.status(id)) return { ok: true };
      await delay(POLL_MS);
    }
    await cluster.kill(id, "SIGKILL");
    return { ok: false, exitCode: null };
  }

  private running(): number[] {
    return this.ids.filter((id) => this.options.cluster.isRunning(id));
  }

  /** The leader the running nodes agree on now, if any (one quick look). */
  private async leader(): Promise<number | undefined> {
    const statuses = await Promise.all(this.running().map((id) => this.options.cluster.status(id)));
    const leaders = statuses.filter((status) => status?.role === "leader").map((status) => status!.id);
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  private async leaderOrAny(step: FaultStep): Promise<number> {
    let leader: number | undefined;
    await this.waitUntil(LEADER_WAIT_MS, async () => (leader = await this.leader()) !== undefined);
    return leader ?? choose(this.running(), 1, step.picks)[0] ?? this.ids[0];
  }

  /** Running nodes other than the leader (all running nodes when no leader is known). */
  private async followers(step: FaultStep): Promise<number[]> {
    const leader = await this.leaderOrAny(step);
    const others = this.running().filter((id) => id !== leader);
    return others.length > 0 ? others : this.running();
  }

  private async waitUntil(timeoutMs: number, condition: () => Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await condition()) return true;
      await delay(POLL_MS * 4);
    }
    return false;
  }

  /** Sleeps `ms`, cut short when the runner is stopped. */
  private async sleep(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopping && Date.now() < until) await delay(Math.min(POLL_MS * 2, until - Date.now()));
  }

  private logPath(id: number): string {
    return join(this.options.dir, `node-${id}.log`);
  }

  private logSize(id: number): number {
    try {
      return statSync(this.logPath(id)).size;
    } catch {
      return 0;
    }
  }

  /** The log since `from` once it shows `expected` (the pipe to the file lags the process), or after LOG_FLUSH_WAIT_MS. */
  private async logSinceEventually(id: number, from: number, expected: RegExp): Promise<string> {
    let text = "";
    await this.waitUntil(LOG_FLUSH_WAIT_MS, async () => expected.test((text = this.logSince(id, from))));
    return text;
  }

  private logSince(id: number, from: number): string {
    try {
      return readFileSync(this.logPath(id)).subarray(from).toString();
    } catch {
      return "";
    }
  }
}

function lastLines(text: string, count: number): string {
  return text.trim().split("\n").slice(-count).join(" / ").slice(0, 600);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
