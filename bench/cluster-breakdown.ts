/**
 * The latency breakdown of one put: a raftwal cluster started with `--trace-latency` takes
 * one-client plain puts; the leader's `GET /debug/latency` (src/node/latency-trace.ts) then
 * says, per stage, the median time since the leader's API received the request. The client's
 * own median beside it shows what lies outside the leader (the client, the loopback, the
 * kernel's socket work).
 */
import type { LatencyStageSummary, LatencySummary } from "../src/node/latency-trace.js";
import { runLoad, type LoadResult } from "./cluster-load.js";
import { median } from "./cluster-report.js";
import type { System } from "./cluster-systems.js";

export interface Breakdown {
  /** The client's view of the same puts (its p50 includes everything below). */
  client: LoadResult;
  leader: LatencySummary;
}

async function debugLatency(url: string, method: "GET" | "DELETE"): Promise<unknown> {
  const response = await fetch(new URL("/debug/latency", url), { method, signal: AbortSignal.timeout(5000) });
  if (response.status !== 200) throw new Error(`${method} /debug/latency answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** One-client plain puts on `system` (started with --trace-latency) for `seconds`; the leader's stage medians. */
export async function measureBreakdown(system: System, seconds: number, value: Buffer): Promise<Breakdown> {
  // Warm up, then forget the warm-up's samples: the summary covers the measured puts only.
  await runLoad({ url: system.leaderUrl, clients: 1, seconds: 1, warmupRequests: 0, serverPids: [], request: (i, w) => system.request("put", i, w, value), check: (s, b) => system.check("put", s, b) });
  await debugLatency(system.leaderUrl, "DELETE");
  const client = await runLoad({
    url: system.leaderUrl,
    clients: 1,
    seconds,
    warmupRequests: 0,
    serverPids: system.pids(),
    request: (i, w) => system.request("put", i, w, value),
    check: (s, b) => system.check("put", s, b),
  });
  const leader = (await debugLatency(system.leaderUrl, "GET")) as LatencySummary;
  return { client, leader };
}

/** Per stage, the median over rounds of its p50 (µs since the request was received, and since the stage before). */
export function breakdownTable(rounds: Breakdown[]): Array<Record<string, string | number>> {
  if (rounds.length === 0) return [];
  const stages = rounds[0].leader.stages.map((s) => s.stage);
  const rows: Array<Record<string, string | number>> = stages.map((stage) => {
    const of = (b: Breakdown): LatencyStageSummary => b.leader.stages.find((s) => s.stage === stage)!;
    return {
      stage,
      "µs since received (p50, median of rounds)": Math.round(median(rounds.map((b) => of(b).sinceReceivedUsP50))),
      "per round": rounds.map((b) => of(b).sinceReceivedUsP50).join(", "),
      "µs since previous stage (p50)": Math.round(median(rounds.map((b) => of(b).stepUsP50))),
    };
  });
  rows.push({
    stage: "client: request start to last byte",
    "µs since received (p50, median of rounds)": Math.round(median(rounds.map((b) => b.client.latencyMsP50 * 1000))),
    "per round": rounds.map((b) => Math.round(b.client.latencyMsP50 * 1000)).join(", "),
    "µs since previous stage (p50)": "-",
  });
  return rows;
}
