/**
 * Small building blocks for the scenario tests: wait for a leader, commit a command
 * through whoever leads, wait until nodes applied an index. Every wait is bounded in
 * ticks and fails the run with its seed when the bound is reached.
 */
import { announceRun, Cluster, type ClusterOptions } from "./cluster.js";
import { MembershipWorkload, type MembershipWorkloadOptions } from "./membership-workload.js";
import type { NodeHost } from "./node-host.js";
import type { Rng } from "../../src/rng.js";
import { describeCluster } from "./simulation.js";

export function makeCluster(options: Partial<ClusterOptions> & { seed: number; testName: string }): Cluster {
  announceRun(options.seed, options.testName);
  return new Cluster({ nodeCount: 3, ...options });
}

/** Ticks until a leader recognized by a majority exists; returns it. */
export function waitForLeader(cluster: Cluster, ticksMax = 300): NodeHost {
  for (let i = 0; i <= ticksMax; i++) {
    const leader = cluster.stableLeader();
    if (leader) return leader;
    cluster.tick();
  }
  return cluster.fail(`no stable leader within ${ticksMax} ticks\n${describeCluster(cluster)}`);
}

/** Ticks until `done()` holds; fails with the cluster's state after `ticksMax`. */
export function waitFor(cluster: Cluster, done: () => boolean, ticksMax: number, what: string): number {
  for (let i = 0; i <= ticksMax; i++) {
    if (cluster.guard(done)) return i;
    cluster.tick();
  }
  return cluster.fail(`${what} not reached within ${ticksMax} ticks\n${describeCluster(cluster)}`);
}

/**
 * Proposes `command` through the current stable leader, retrying (as the same
 * command on a new leader) until it is acknowledged; returns its index and term.
 */
export function commit(cluster: Cluster, command: string, ticksMax = 500): { index: number; term: number } {
  const start = cluster.now();
  let proposedOn = 0;
  let proposedTick = -Infinity;
  for (;;) {
    const acked = cluster.workload.ackedAt.get(command);
    if (acked) return acked;
    if (cluster.now() - start > ticksMax) cluster.fail(`"${command}" not acknowledged within ${ticksMax} ticks\n${describeCluster(cluster)}`);
    const leader = cluster.stableLeader();
    const leaderChanged = leader && leader.id !== proposedOn;
    if (leader && (leaderChanged || cluster.now() - proposedTick > 100)) {
      if (cluster.workload.tryProposeCommand(leader, command)) {
        proposedOn = leader.id;
        proposedTick = cluster.now();
      }
    }
    cluster.tick();
  }
}

/** Ticks until every listed node (default: all) is live and applied at least `index`. */
export function waitApplied(cluster: Cluster, index: number, ids: readonly number[] = cluster.ids, ticksMax = 500): void {
  waitFor(cluster, () => ids.every((id) => cluster.node(id).alive && cluster.node(id).stateMachine.appliedIndex >= index), ticksMax, `nodes ${ids.join(",")} applied ${index}`);
}

/** The other node ids. */
export function others(cluster: Cluster, ...ids: number[]): number[] {
  return cluster.ids.filter((id) => !ids.includes(id));
}

/** A membership workload on `cluster`, stepped every tick, enabled, starting no operation of its own (a scenario asks with `begin`). */
export function scenarioMembership(cluster: Cluster, rng: Rng, options: Partial<MembershipWorkloadOptions> = {}): MembershipWorkload {
  const membership = new MembershipWorkload(cluster, rng, { operations: [], ...options });
  cluster.tickHooks.push(() => membership.step());
  membership.enabled = true;
  membership.startsAllowed = false;
  return membership;
}

/** Adds `ids` as learners through `membership` and waits until they applied what the leader committed; returns the leader. */
export function addLearnersCaughtUp(cluster: Cluster, membership: MembershipWorkload, ids: number[]): NodeHost {
  membership.begin("add-learner", [{ add: ids }]);
  waitFor(cluster, () => !membership.busy(), 1500, `learners ${ids.join(",")} added`);
  const leader = waitForLeader(cluster);
  waitApplied(cluster, leader.raft().commitIndex(), ids, 1500);
  return leader;
}
