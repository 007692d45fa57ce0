/** The latency breakdown's table over rounds: per stage the median of the rounds' p50s, the same median as the ratio columns. */
import { describe, expect, it } from "vitest";
import type { Breakdown } from "../../bench/cluster-breakdown.js";
import { breakdownSections, breakdownTable, followerBreakdownTable } from "../../bench/cluster-breakdown.js";
import type { LoadResult } from "../../bench/cluster-load.js";

function round(syncedUs: number, clientMs: number): Breakdown {
  const client: LoadResult = { ops: 1, errors: {}, seconds: 1, opsPerSecond: 1, latencyMsP50: clientMs, latencyMsP99: clientMs, latencyMsMax: clientMs, perSecondOps: [1], serverCpuUsPerOp: 1 };
  const stage = (name: "requestReceived" | "leaderWalSynced", since: number) => ({ stage: name, sinceReceivedUsP50: since, sinceReceivedUsP90: since, stepUsP50: since, samples: 1 });
  return { client, leader: { samples: 1, stages: [stage("requestReceived", 0), stage("leaderWalSynced", syncedUs)], follower: { samples: 0, stages: [] } } };
}

describe("bench:cluster's latency breakdown over rounds", () => {
  it("takes the median of the rounds (the mean of the middle two for an even count), rounded to a µs", () => {
    const table = breakdownTable([round(800, 1.5), round(1000, 1.7), round(861, 1.6), round(2000, 2.9)]);
    const synced = table.find((row) => row.stage === "leaderWalSynced")!;
    expect(synced["µs since received (p50, median of rounds)"]).toBe(931);
    expect(synced["per round"]).toBe("800, 1000, 861, 2000");
    expect(table.at(-1)!["µs since received (p50, median of rounds)"]).toBe(1650);
  });
});

describe("bench:cluster's follower breakdown", () => {
  const followerRound = (syncedUs: number, ackUs: number): Breakdown => {
    const base = round(syncedUs, 1);
    const stage = (name: "appendReceived" | "walSynced" | "acknowledged", since: number) => ({ stage: name, sinceReceivedUsP50: since, sinceReceivedUsP90: since, stepUsP50: since, samples: 3 });
    return { ...base, follower: { samples: 3, stages: [stage("appendReceived", 0), stage("walSynced", syncedUs), stage("acknowledged", ackUs)] } };
  };

  it("takes the median over the rounds that traced a follower, and is empty for results saved before", () => {
    const table = followerBreakdownTable([followerRound(700, 760), round(1, 1), followerRound(900, 1000), followerRound(800, 820)]);
    expect(table.map((row) => row.stage)).toEqual(["appendReceived", "walSynced", "acknowledged"]);
    expect(table[2]["µs since the append arrived (p50, median of rounds)"]).toBe(820);
    expect(table[2]["per round"]).toBe("760, 1000, 820");
    expect(followerBreakdownTable([round(1, 1)])).toEqual([]);
  });

  it("is printed as a second section only where a follower was traced (bench:cluster and cluster-combine print the same sections)", () => {
    expect(breakdownSections([])).toEqual([]);
    expect(breakdownSections([round(1, 1)]).map((section) => section.title)).toEqual([expect.stringMatching(/^Latency breakdown of one put/)]);
    const both = breakdownSections([followerRound(700, 760), round(1, 1)]);
    expect(both.map((section) => section.title)).toEqual([expect.stringMatching(/^Latency breakdown of one put/), expect.stringMatching(/^The same puts on one follower/)]);
    expect(both[1].rows).toEqual(followerBreakdownTable([followerRound(700, 760)]));
  });
});
