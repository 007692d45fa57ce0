/**
 * The simulator must be able to fail. A host that acknowledges before it is durable
 * (it calls advance() at once and writes to disk a few ticks later) loses votes and
 * entries on a crash; under the same fault mix as the churn test, the checkers must
 * report a safety or durability violation on some of a handful of seeds.
 */
import { describe, expect, it } from "vitest";
import { SimulationFailure } from "./cluster.js";
import { UNRELIABLE_NETWORK } from "./network.js";
import { NO_FAULTS, runSimulation } from "./simulation.js";

const SEEDS = [901, 902, 903, 904, 905, 906];

describe("the simulator catches a broken host", () => {
  it("advance() before the Ready is durable is reported as a violation", () => {
    const failures: string[] = [];
    for (const seed of SEEDS) {
      try {
        runSimulation({
          seed,
          testName: "broken host: advance before durable",
          nodeCount: 3,
          persistDelayTicksMax: 4,
          mutation: "advance-before-durable",
          workload: { proposeProbability: 0.8, inflightMax: 6, readProbability: 0.1 },
          faults: { ...NO_FAULTS, network: UNRELIABLE_NETWORK, crashProbability: 0.03, leaderCrashProbability: 0.02, downMax: 1, restartProbability: 0.1 },
          safetyTicks: 1500,
          electionTicksMax: 600,
          convergenceTicksMax: 1500,
        });
      } catch (error) {
        if (!(error instanceof SimulationFailure)) throw error;
        failures.push(error.message.split("\n")[0]!);
      }
    }
    console.log(failures.join("\n"));
    expect(failures.length, "runs that caught the broken host").toBeGreaterThanOrEqual(2);
    expect(failures.filter((f) => f.includes("safety violation")).length, "caught by a checker").toBeGreaterThanOrEqual(2);
    // The message names the seed and the replay command.
    expect(failures[0]).toMatch(/seed 9\d\d, tick \d+/);
  });
});
