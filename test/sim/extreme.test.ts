/**
 * Harsher than the everything-random test: slow disks (persistence delayed by up to
 * the election timeout), frequent crashes inside persistence, a network that duplicates
 * a third of its messages and holds some back for hundreds of ticks, compaction every
 * two entries with 128-byte snapshot chunks, and up to 7 nodes.
 */
import { describe, expect } from "vitest";
import { HOSTILE_NETWORK } from "./network.js";
import { Rng } from "../../src/rng.js";
import { NO_FAULTS, randomCoreSettings, runSimulation } from "./simulation.js";
import { seededTest } from "./seeds.js";

describe("randomized, extreme", () => {
  seededTest("slow disks, crashes inside persistence, heavy duplication and reordering", Array.from({ length: 24 }, (_, i) => 2001 + i), (seed, testName) => {
    const rng = new Rng(seed).derive("configuration");
    const core = { ...randomCoreSettings(rng), snapshotChunkBytes: 128 };
    const nodeCount = rng.pick([3, 5, 7]);
    const report = runSimulation({
      seed,
      testName,
      nodeCount,
      core,
      persistDelayTicksMax: 2,
      snapshotEveryAppliedEntries: 2,
      workload: { proposeProbability: 0.8, inflightMax: 8, batchSizeMax: 4, readProbability: 0.2 },
      faults: {
        ...NO_FAULTS,
        network: { ...HOSTILE_NETWORK, duplicateProbability: 0.3, longDelayProbability: 0.05, longDelayTicksMax: 500 },
        crashProbability: 0.01,
        leaderCrashProbability: 0.01,
        downMax: Math.floor((nodeCount - 1) / 2),
        restartProbability: 0.05,
        crashDuringPersistProbability: 0.01,
        partitionProbability: 0.01,
        healProbability: 0.02,
        isolateProbability: 0.01,
        transferProbability: 0.01,
        reportUnreachableProbability: 0.5,
        snapshotNowProbability: 0.02,
        slowDiskTicksMax: rng.between(2, core.electionTimeoutTicks!),
      },
      safetyTicks: 2000,
      electionTicksMax: 60 * core.electionTimeoutTicks!,
      convergenceTicksMax: 4000,
    });
    console.log(`[sim] report ${JSON.stringify(report)}`);
    expect(report.crashes).toBeGreaterThan(0);
    expect(report.acked).toBeGreaterThan(0);
  });
});
