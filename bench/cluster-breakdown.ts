/**
 * The latency breakdown of one put: a raftwal cluster started with `--trace-latency` takes
 * one-client plain puts; the leader's `GET /debug/latency` (src/node/latency-trace.ts) then
 * says, per stage, the median time since the leader's API received the request. The client's
 * own median beside it shows what lies outside the leader (the client, the loopback, the
 * kernel's socket work). One follower's trace of the same entries (from the append's arrival
 * to its acknowledgement) says where the time between "sentToFollowers" and
 * "firstFollowerAck" goes.
 */
import type { LatencyStageSummary, LatencySummary } from "../src/node/latency-trace.js";
import { runLoad, type LoadResult } from "./cluster-load.js";
import type { TableRow } from "./cluster-report.js";
import { median } from "./stats.js";
import type { System } from "./cluster-systems.js";

export interface Breakdown {
  /** The client's view of the same puts (its p50 includes everything below). */
  client: LoadResult;
  leader: LatencySummary;
  /** One follower's trace of the same puts' entries (absent from results saved before it was measured). */
  follower?: LatencySummary["follower"];
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
  await debugLatency(system.followerUrl, "DELETE");
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
  const follower = ((await debugLatency(system.followerUrl, "GET")) as LatencySummary).follower;
  return { client, leader, follower };
}

/** Per stage, the median over rounds of its p50 (µs since the first stage, and since the stage before). */
function stageRows(rounds: Array<Array<LatencyStageSummary<string>>>, sinceHeading: string): TableRow[] {
  if (rounds.length === 0) return [];
  return rounds[0].map(({ stage }) => {
    const of = (stages: Array<LatencyStageSummary<string>>): LatencyStageSummary<string> => stages.find((s) => s.stage === stage)!;
    return {
      stage,
      [sinceHeading]: Math.round(median(rounds.map((stages) => of(stages).sinceReceivedUsP50))),
      "per round": rounds.map((stages) => of(stages).sinceReceivedUsP50).join(", "),
      "µs since previous stage (p50)": Math.round(median(rounds.map((stages) => of(stages).stepUsP50))),
    };
  });
}

/** The leader's stages over rounds, and the client's own median after them. */
export function breakdownTable(rounds: Breakdown[]): TableRow[] {
  if (rounds.length === 0) return [];
  const sinceHeading = "µs since received (p50, median of rounds)";
  const rows = stageRows(rounds.map((b) => b.leader.stages), sinceHeading);
  rows.push({
    stage: "client: request start to last byte",
    [sinceHeading]: Math.round(median(rounds.map((b) => b.client.latencyMsP50 * 1000))),
    "per round": rounds.map((b) => Math.round(b.client.latencyMsP50 * 1000)).join(", "),
    "µs since previous stage (p50)": "-",
  });
  return rows;
}

/** One follower's stages over the rounds that measured them (none in results saved before). */
export function followerBreakdownTable(rounds: Breakdown[]): TableRow[] {
  const measured = rounds.flatMap((b) => (b.follower && b.follower.samples > 0 ? [b.follower.stages] : []));
  return stageRows(measured, "µs since the append arrived (p50, median of rounds)");
}

/** What the benchmark and cluster-combine print of the breakdowns: the leader's table, then one follower's when measured. */
export function breakdownSections(rounds: Breakdown[]): Array<{ title: string; rows: TableRow[] }> {
  const sections: Array<{ title: string; rows: TableRow[] }> = [];
  if (rounds.length > 0) sections.push({ title: "Latency breakdown of one put (1 client, plain PUT, on the leader with --trace-latency):", rows: breakdownTable(rounds) });
  const followerRows = followerBreakdownTable(rounds);
  if (followerRows.length > 0) sections.push({ title: "The same puts on one follower (from the append's arrival to its acknowledgement):", rows: followerRows });
  return sections;
}
