/**
 * Runs the nemesis schedule (nemesis.ts) against a LocalCluster: resolves each step's
 * targets ("the leader", "a follower") at the moment it runs, injects the fault, holds it,
 * heals it, and records what happened in RunEvents. Every wait is bounded. Kills, pauses,
 * partitions, power loss and snapshot catch-ups are here; storage damage is
 * disk-faults.ts, membership changes membership-faults.ts; both drive the nodes through
 * NodeControl, which also records any node that stops by itself.
 */
import type { LocalCluster } from "../cli/local-cluster.js";
import { DiskNemesis, type DiskFaultKind } from "./disk-faults.js";
import type { RunEvents } from "./events.js";
import type { MembershipFaultKind } from "./membership-plan.js";
import { MembershipNemesis } from "./membership-faults.js";
import { choose, NEMESIS_GROUPS, type FaultStep } from "./nemesis.js";
import { NodeControl } from "./node-control.js";

/** A node told to tear its writes must be gone within this time (then it is killed). */
const TEAR_EXIT_TIMEOUT_MS = 5_000;
/** How long the snapshot step waits for the leader to compact past the stopped node's log. */
const COMPACTION_WAIT_MS = 20_000;
/** How long a restarted node gets to catch up with the leader's commit index. */
const CATCH_UP_TIMEOUT_MS = 20_000;

export interface FaultRunnerOptions {
  cluster: LocalCluster;
  events: RunEvents;
  /** Nodes run with --fault-power-loss: every kill -9 loses what was not fsynced. */
  powerLoss: boolean;
  /** The run's directory (node logs are `<dir>/node-<id>.log`). */
  dir: string;
  /** Nodes that snapshot rarely (their logs span several sealed segments). */
  longLog: (id: number) => boolean;
  /** Also the damage cases of open bugs (TORTURE.md, "Known bugs"). */
  /** The clients' endpoints follow the members. */
  setEndpoints: (apiUrls: string[]) => void;
}

const DISK_KINDS = new Set<string>(NEMESIS_GROUPS.disk);
const MEMBERSHIP_KINDS = new Set<string>(NEMESIS_GROUPS.membership);

export class FaultRunner {
  readonly control: NodeControl;
  readonly membership: MembershipNemesis;
  private readonly disk: DiskNemesis;

  constructor(private readonly options: FaultRunnerOptions) {
    this.control = new NodeControl(options.cluster, options.events, options.dir);
    this.membership = new MembershipNemesis({ control: this.control, nodes: options.cluster.specs.length, setEndpoints: options.setEndpoints });
    this.disk = new DiskNemesis({
      control: this.control,
      voters: () => this.membership.members.voters,
      longLog: options.longLog,
    });
  }

  /** Runs the steps in order until the schedule ends or `deadline` (Date.now() ms) passes. */
  async run(steps: readonly FaultStep[], deadline: number): Promise<void> {
    for (const step of steps) {
      if (this.control.stopping || Date.now() + step.delayBeforeMs >= deadline) break;
      await this.control.sleep(step.delayBeforeMs);
      if (this.control.stopping) break;
      await this.restartStopped();
      await this.runStep(step);
    }
  }

  /** Makes `run` stop after the step in progress (which still heals what it did). */
  stop(): void {
    this.control.stopping = true;
  }

  /**
   * Every step heals what it did, so a member that is down now stopped by itself (already a
   * violation): restarted, as a supervisor would, so that the run goes on meaning something.
   */
  private async restartStopped(): Promise<void> {
    for (const id of this.control.ids()) {
      if (this.options.cluster.isRunning(id)) continue;
      this.options.events.note(`n${id} is down (it stopped by itself); restarted before the next fault`);
      await this.control.restart(id, "it stopped by itself");
    }
  }

  /** Undoes every fault: resumes paused nodes, heals partitions, starts stopped nodes. */
  async healAll(): Promise<void> {
    const { cluster } = this.options;
    for (const id of this.control.ids()) if (cluster.isRunning(id)) cluster.signal(id, "SIGCONT");
    for (const id of this.control.ids()) {
      if (!cluster.isRunning(id)) await this.control.restart(id, "heal");
    }
    await this.setPartition(new Map());
  }

  private async runStep(step: FaultStep): Promise<void> {
    const { control } = this;
    if (DISK_KINDS.has(step.kind)) return this.disk.run(step as FaultStep & { kind: DiskFaultKind });
    if (MEMBERSHIP_KINDS.has(step.kind)) return this.membership.run(step as FaultStep & { kind: MembershipFaultKind });
    switch (step.kind) {
      case "kill-leader":
        return this.killAndRestart(step, [await control.leaderOrAny(step.picks)]);
      case "kill-follower":
        return this.killAndRestart(step, choose(await control.followers(step.picks), 1, step.picks));
      case "kill-majority": {
        // A majority of the voters (learners count in no majority).
        const voters = this.membership.members.voters;
        return this.killAndRestart(step, choose(voters.filter((id) => this.options.cluster.isRunning(id)), Math.floor(voters.length / 2) + 1, step.picks));
      }
      case "kill-all":
      case "powerloss-all":
        return this.killAndRestart(step, control.running());
      case "powerloss-node":
        return this.killAndRestart(step, choose(control.running(), 1, step.picks));
      case "tear-node":
        return this.tear(step);
      case "pause-leader":
        return this.pause(step);
      case "partition-isolate":
      case "partition-split":
      case "partition-bridge":
        return this.partition(step);
      case "snapshot-catchup":
        return this.snapshotCatchUp(step);
    }
  }

  // ---- kills and pauses ---------------------------------------------------------------

  private async killAndRestart(step: FaultStep, targets: number[]): Promise<void> {
    if (targets.length === 0) return;
    const { control } = this;
    const record = control.events.begin(step.index, step.kind, targets);
    await Promise.all(targets.map((id) => control.kill(id)));
    await control.sleep(step.durationMs);
    const results = await Promise.all(targets.map((id) => control.restart(id, step.kind)));
    control.events.end(record, results.every(Boolean) ? (this.options.powerLoss ? "power cut, restarted" : "killed, restarted") : "a node did not come back");
  }

  private async tear(step: FaultStep): Promise<void> {
    const { control } = this;
    const { cluster, events } = control;
    const [id] = choose(control.running(), 1, step.picks);
    if (id === undefined) return;
    const record = events.begin(step.index, step.kind, [id]);
    const exited = control.nextExit(id, "torn write-back (asked for)");
    try {
      await fetch(`${cluster.spec(id).apiUrl}/admin/tear?seed=${step.seed}`, { method: "POST", signal: AbortSignal.timeout(2000) });
    } catch {
      // The node may vanish before the answer arrives.
    }
    const gone = await control.waitUntil(TEAR_EXIT_TIMEOUT_MS, async () => !cluster.isRunning(id));
    if (!gone) {
      events.note(`n${id} did not exit after /admin/tear; killed`);
      await control.kill(id);
    } else {
      await exited;
    }
    await control.sleep(step.durationMs);
    const back = await control.restart(id, step.kind);
    events.end(record, back ? "torn write-back, restarted" : "did not come back");
  }

  private async pause(step: FaultStep): Promise<void> {
    const { control } = this;
    const leader = await control.leaderOrAny(step.picks);
    const record = control.events.begin(step.index, step.kind, [leader]);
    control.cluster.signal(leader, "SIGSTOP");
    await control.sleep(step.durationMs);
    control.cluster.signal(leader, "SIGCONT");
    control.events.end(record, "resumed");
  }

  // ---- partitions ---------------------------------------------------------------------

  private async partition(step: FaultStep): Promise<void> {
    const { events } = this.control;
    const ids = this.control.ids();
    const order = choose(ids, ids.length, step.picks.concat(step.picks));
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
      const leader = await this.control.leader();
      const minoritySize = 1 + Math.floor(step.picks[2] * Math.floor((ids.length - 1) / 2));
      let minority = order.slice(0, minoritySize);
      if (leader !== undefined && step.picks[3] < 0.5 && !minority.includes(leader)) minority = [leader, ...minority.slice(1)];
      const majority = ids.filter((id) => !minority.includes(id));
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
    await this.control.sleep(step.durationMs);
    await this.setPartition(new Map());
    events.end(record, `healed (${description})`);
  }

  /** Sends every running node its blocked peers (nodes not in `blocks` get none). */
  private async setPartition(blocks: Map<number, number[]>): Promise<void> {
    const { cluster, events } = this.control;
    await Promise.all(
      this.control.running().map(async (id) => {
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

  // ---- catch-up from a snapshot -------------------------------------------------------

  /**
   * A follower is killed and kept down until the leader compacted past its last index
   * (bounded), then restarted: it must catch up through the leader's snapshot. A leader
   * that keeps a long log hands leadership to one that snapshots often first.
   */
  private async snapshotCatchUp(step: FaultStep): Promise<void> {
    const { control } = this;
    const { cluster, events } = control;
    const [id] = choose(await control.followers(step.picks), 1, step.picks);
    if (id === undefined) return;
    const record = events.begin(step.index, step.kind, [id]);
    const lastIndex = (await control.status(id))?.lastIndex ?? 0;
    await control.kill(id);
    const leader = await control.leader();
    if (leader !== undefined && this.options.longLog(leader)) {
      const [other] = control.running().filter((other) => !this.options.longLog(other));
      if (other !== undefined) await control.makeLeader(other);
    }
    const compacted = await control.waitUntil(COMPACTION_WAIT_MS, async () => {
      const now = await control.leader();
      return now !== undefined && ((await control.status(now))?.snapshotIndex ?? 0) > lastIndex;
    });
    if (!compacted) events.note(`snapshot-catchup: the leader did not compact past n${id}'s last index ${lastIndex} within ${COMPACTION_WAIT_MS} ms`);
    const logFrom = control.logSize(id);
    if (!(await control.restart(id, step.kind))) {
      events.end(record, "did not come back");
      return;
    }
    const now = await control.leader();
    const target = now === undefined ? 0 : ((await cluster.status(now))?.commitIndex ?? 0);
    const caughtUp = await control.waitUntil(CATCH_UP_TIMEOUT_MS, async () => ((await cluster.status(id))?.appliedIndex ?? 0) >= target);
    const viaSnapshot = control.logSince(id, logFrom).includes("installed a snapshot from the leader");
    if (viaSnapshot) events.snapshotCatchUps++;
    events.end(record, `${caughtUp ? "caught up" : "not caught up yet"} ${viaSnapshot ? "through a snapshot" : "from the log"} (was at ${lastIndex}, target ${target})`);
  }
}
