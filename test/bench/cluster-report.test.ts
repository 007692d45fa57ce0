/**
 * The cluster benchmark's table: the ratio columns are medians of per-round ratios, and the
 * server CPU ratio (issue 11's "<= 1/3 of etcd's") is one of them.
 */
import { describe, expect, it } from "vitest";
import type { LoadResult } from "../../bench/cluster-load.js";
import { markdown, printable, summarize, type Round } from "../../bench/cluster-report.js";
import { loadRound, saveRound, type SavedRound } from "../../bench/cluster-results.js";
import { etcdSignature, raftwalSignature, rowSpecs } from "../../bench/cluster-rows.js";

function load(opsPerSecond: number, serverCpuUsPerOp: number): LoadResult {
  return { ops: opsPerSecond, errors: {}, seconds: 1, opsPerSecond, latencyMsP50: 1000 / opsPerSecond, latencyMsP99: 4000 / opsPerSecond, latencyMsMax: 10, perSecondOps: [opsPerSecond], serverCpuUsPerOp };
}

describe("bench:cluster's table", () => {
  const spec = rowSpecs(true).find((s) => s.label === "put" && s.clients === 64)!;
  // Three rounds: CPU ratios 0.5, 0.25 and 0.2; ops ratios 2, 1.5 and 3.
  const rounds: Round[] = [
    [2000, 100, 1000, 200],
    [1500, 50, 1000, 200],
    [3000, 40, 1000, 200],
  ].map(([rOps, rCpu, eOps, eCpu]) => ({
    raftwal: new Map([[raftwalSignature(spec), load(rOps, rCpu)]]),
    etcd: new Map([[etcdSignature(spec), load(eOps, eCpu)]]),
  }));

  it("prints the median of the per-round server CPU ratios beside the CPU per operation", () => {
    const [row] = printable(summarize([spec], rounds));
    expect(row["CPU ratio"]).toBe("0.25");
    expect(row.ratio).toBe("2.00");
    expect(row["server CPU µs/op r / e"]).toBe("40-100 / 200");
    expect(markdown(summarize([spec], rounds)).split("\n")[0]).toContain("| CPU ratio |");
  });

  it("prints no ratio without etcd (--no-etcd)", () => {
    const alone = rounds.map((round) => ({ raftwal: round.raftwal, etcd: new Map<string, LoadResult>() }));
    const [row] = printable(summarize([spec], alone));
    expect(row["CPU ratio"]).toBe("-");
    expect(row.ratio).toBe("-");
  });

  it("summarizes rounds read back from the saved JSON (cluster-combine) as the rounds measured", () => {
    const saved = JSON.parse(JSON.stringify(rounds.map(saveRound))) as SavedRound[];
    expect(summarize([spec], saved.map(loadRound))).toEqual(summarize([spec], rounds));
    expect(saved[0].raftwal[raftwalSignature(spec)].opsPerSecond).toBe(2000);
  });
});
