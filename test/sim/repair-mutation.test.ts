/**
 * The repair checkers can fail. Two broken behaviours, built here in the test only:
 *
 *   - A host that forgets to tell the core its hard state was lost (the "forget-hard-state-
 *     loss" host: the restart's damage says hardStateLost false), so the node keeps voting
 *     with its vote forgotten. A fault makes that likely: a node that just granted a vote
 *     crashes and loses its hard state, and restarts at once; elections are frequent (no
 *     PreVote, no CheckQuorum, short timeouts, an unreliable network), so the candidate it
 *     voted for often wins and another one asks it again in that term. The double-vote
 *     checker catches it; with that checker off, election safety (two leaders of a term)
 *     does on some seeds; the same runs with a correct host pass.
 *   - A salvage that keeps a record whose bytes were flipped (no checksum looked at):
 *     applied-intact catches the damaged bytes when the node applies them.
 */
import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/schema.js";
import { SimulationFailure, type Cluster } from "./cluster.js";
import { commit, makeCluster, others, waitForLeader } from "./helpers.js";
import type { HostMutation } from "./node-host.js";
import { UNRELIABLE_NETWORK } from "./network.js";
import { NO_FAULTS, runSimulation } from "./simulation.js";

/** After a node grants a vote, with `probability` it crashes, loses its hard state and restarts (at the next tick). */
function voteThenLoseHardState(cluster: Cluster, probability: number): void {
  const rng = cluster.rng.derive("vote-then-damage");
  const voted: number[] = [];
  cluster.network.intercept = (message) => {
    if (message.type === MessageType.VOTE_RESPONSE && !message.reject) voted.push(message.from);
    return true;
  };
  cluster.tickHooks.push(() => {
    for (const id of voted.splice(0)) {
      const node = cluster.node(id);
      if (!node.alive || !rng.chance(probability)) continue;
      node.crash();
      node.damage("damage-hard-state", rng);
      cluster.restart(id);
    }
  });
}

/** Runs the scenario on `seeds`; returns the first line of each failure (seed and violation). */
function runVoteLoss(seeds: readonly number[], mutation: HostMutation | undefined, checkDoubleVotes: boolean): string[] {
  const failures: string[] = [];
  for (const seed of seeds) {
    try {
      runSimulation({
        seed,
        testName: `lost vote${mutation ? `, broken host: ${mutation}` : ""}`,
        nodeCount: 3,
        core: { electionTimeoutTicks: 6, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false },
        persistDelayTicksMax: 1,
        ...(mutation ? { mutation } : {}),
        setup: (cluster) => {
          voteThenLoseHardState(cluster, 0.6);
          cluster.checkers.repair.checkDoubleVotes = checkDoubleVotes;
        },
        faults: { ...NO_FAULTS, network: UNRELIABLE_NETWORK, leaderCrashProbability: 0.02, crashProbability: 0.01, downMax: 1, restartProbability: 0.1 },
        safetyTicks: 1000,
        electionTicksMax: 1000,
        convergenceTicksMax: 3000,
      });
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
      failures.push(error.message.split("\n")[0]!);
    }
  }
  return failures;
}

/** Trajectories move with any change in the messages the core sends; 24 runs keep a margin over the 4 needed (11 caught when last changed). */
const SEEDS = Array.from({ length: 24 }, (_, i) => i + 1);
/** Two leaders of one term needs the double vote and then the right election: rarer, so more runs. */
const DEEPER_SEEDS = Array.from({ length: 32 }, (_, i) => i + 1);

describe("the simulator catches broken repair", () => {
  it("a node that keeps voting while its hard state is unknown is caught: a double vote, or two leaders of a term", () => {
    const caught = runVoteLoss(SEEDS, "forget-hard-state-loss", true);
    console.log(caught.join("\n"));
    expect(caught.filter((f) => f.includes("[double-vote]")).length, "runs caught by double-vote").toBeGreaterThanOrEqual(4);
    expect(caught[0]).toMatch(/seed \d+, tick \d+/);
    // The double vote does harm: without its checker, Raft's own properties fail.
    const deeper = runVoteLoss(DEEPER_SEEDS, "forget-hard-state-loss", false);
    console.log(deeper.join("\n"));
    expect(deeper.filter((f) => /\[(election-safety|log-matching|leader-completeness|state-machine-safety)\]/.test(f)).length, "runs caught by Raft's properties").toBeGreaterThanOrEqual(2);
    // A correct host in the same runs: nothing to report.
    expect(runVoteLoss(SEEDS.slice(0, 3), undefined, true)).toEqual([]);
  });

  it("a salvage that keeps a flipped record is caught: no damaged byte is ever applied", () => {
    const cluster = makeCluster({ seed: 7, testName: "broken salvage: a flipped record kept" });
    const leader = waitForLeader(cluster);
    for (let i = 0; i < 5; i++) commit(cluster, `command-${i}`);
    const follower = cluster.node(others(cluster, leader.id)[0]!);
    follower.crash();
    // The broken salvage: one record's bytes flipped, nothing set aside, nothing reported.
    const disk = follower.disk;
    const storage = disk.storage;
    const log = disk.keptLog();
    const entries = [...log.entries];
    const victim = entries.findIndex((entry) => entry.data.length > 0 && entry.index > 1);
    const flipped = entries[victim]!.data.slice();
    flipped[0]! ^= 0x20;
    entries[victim] = { ...entries[victim]!, data: flipped };
    disk.rewrite(disk.snapshots(), { ...log, entries }, storage.hardState());
    expect(() => {
      cluster.restart(follower.id);
      cluster.run(50);
    }).toThrow(/\[(applied-intact|state-machine-safety)\]/);
  });
});
