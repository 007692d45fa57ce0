/**
 * Everything drawn from the seed: cluster size, core settings (timeouts, flow-control
 * limits down to one message in flight and 16-byte messages, PreVote and CheckQuorum
 * on or off), persistence delay, compaction cadence, network fault mix, crash and
 * partition rates, leadership transfers, transport reports. Safety phase, then the
 * liveness phase must converge.
 */
import { describe, expect } from "vitest";
import { HOSTILE_NETWORK, RELIABLE_NETWORK, UNRELIABLE_NETWORK } from "./network.js";
import { Rng } from "../../src/rng.js";
import { NO_FAULTS, randomCoreSettings, runSimulation } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("randomized", () => {
  seededTest("everything random: configuration, faults, workload", Array.from({ length: 32 }, (_, i) => 1001 + i), (seed, testName) => {
    const rng = new Rng(seed).derive("configuration");
    const core = randomCoreSettings(rng);
    const report = runSimulation({
      seed,
      testName,
      nodeCount: rng.pick([3, 5]),
      core,
      persistDelayTicksMax: rng.between(0, 4),
      snapshotEveryAppliedEntries: rng.pick([0, 3, 10]),
      // Its own stream, so that the other choices of a seed stay what they were before the tail.
      snapshotCatchUpEntries: new Rng(seed).derive("catch-up tail").pick([0, 2, 8]),
      initialElectionTickAdvance: new Rng(seed).derive("election tick advance").chance(0.5),
      snapshotPaddingBytes: rng.pick([0, 100, 2000]),
      workload: {
        proposeProbability: rng.pick([0.2, 0.6, 1]),
        inflightMax: rng.between(1, 8),
        batchSizeMax: rng.pick([1, 3, 5, 40]),
        readProbability: rng.pick([0, 0.1, 0.3]),
      },
      faults: {
        ...NO_FAULTS,
        network: rng.pick([RELIABLE_NETWORK, UNRELIABLE_NETWORK, HOSTILE_NETWORK]),
        crashProbability: rng.pick([0, 0.005, 0.02]),
        leaderCrashProbability: rng.pick([0, 0.005, 0.01]),
        downMax: rng.between(1, 2),
        restartProbability: rng.pick([0.02, 0.1]),
        crashDuringPersistProbability: rng.pick([0, 0.005, 0.02]),
        partitionProbability: rng.pick([0, 0.005, 0.02]),
        healProbability: 0.02,
        isolateProbability: rng.pick([0, 0.01]),
        transferProbability: rng.pick([0, 0.005, 0.02]),
        reportUnreachableProbability: rng.pick([0, 0.5, 1]),
        snapshotNowProbability: rng.pick([0, 0.01]),
      },
      safetyTicks: 2000,
      electionTicksMax: 40 * core.electionTimeoutTicks!,
      convergenceTicksMax: 3000,
    });
    console.log(`[sim] report ${JSON.stringify(report)}`);
    expect(report.terms).toBeGreaterThanOrEqual(1);
    expect(report.convergenceTicks).toBeGreaterThanOrEqual(0);
  });
});
