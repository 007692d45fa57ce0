/**
 * The opt-in latency trace (src/node/latency-trace.ts): the stages of a write recorded on
 * the leader, and of its entry on a follower, in causal order; off by default (no trace, and
 * /debug/latency answers 404).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { KvNode } from "../../src/kv/kv-node.js";
import { LatencyTrace, type FollowerLatencyStage, type LatencyStage, type LatencySummary } from "../../src/node/latency-trace.js";
import { EntryType, MessageType, newMessage, type Entry } from "../../src/proto/schema.js";
import { until } from "../waiting.js";
import { closeKvNodes, startThree } from "./kv-nodes.js";

afterEach(closeKvNodes);

async function leaderOf(nodes: KvNode[]): Promise<KvNode> {
  const id = await nodes[0].node.waitForLeader({ timeoutMs: 10_000 });
  return nodes.find((n) => n.node.status().id === id)!;
}

const apiUrl = (node: KvNode, path: string) => `http://127.0.0.1:${node.apiAddress.port}${path}`;

describe("latency trace", () => {
  it("records every stage of a write on the leader, in causal order, and serves them at /debug/latency", async () => {
    const leader = await leaderOf(await startThree({ clusterId: "trace", latencyTrace: true }));
    for (let i = 0; i < 5; i++) {
      const answer = await fetch(apiUrl(leader, `/kv/k${i}`), { method: "PUT", body: "v" });
      expect(answer.status).toBe(200);
    }
    const summary = (await (await fetch(apiUrl(leader, "/debug/latency"))).json()) as LatencySummary;
    expect(summary.samples).toBe(5);
    const at = (stage: LatencyStage) => summary.stages.find((s) => s.stage === stage)!;
    for (const stage of summary.stages) expect(stage.samples, stage.stage).toBe(5);
    // Medians keep a per-sample order: a <= b in every sample gives median(a) <= median(b).
    const chain: LatencyStage[] = ["requestReceived", "bodyRead", "proposed", "sentToFollowers", "firstFollowerAck", "committed", "applied", "responseWritten"];
    for (let i = 1; i < chain.length; i++) expect(at(chain[i]).sinceReceivedUsP50, chain[i]).toBeGreaterThanOrEqual(at(chain[i - 1]).sinceReceivedUsP50);
    // The leader's own write: issued after the proposal, durable before the entry is handed out committed.
    expect(at("leaderAppendIssued").sinceReceivedUsP50).toBeGreaterThanOrEqual(at("proposed").sinceReceivedUsP50);
    expect(at("leaderWalSynced").sinceReceivedUsP50).toBeLessThanOrEqual(at("committed").sinceReceivedUsP50);
    expect((await fetch(apiUrl(leader, "/debug/latency"), { method: "DELETE" })).status).toBe(200);
    expect(((await (await fetch(apiUrl(leader, "/debug/latency"))).json()) as LatencySummary).samples).toBe(0);
  });

  it("records an entry's stages on a follower, from its append's arrival to its acknowledgement, in causal order", async () => {
    const nodes = await startThree({ clusterId: "trace", latencyTrace: true });
    const leader = await leaderOf(nodes);
    const follower = nodes.find((n) => n !== leader)!;
    await fetch(apiUrl(follower, "/debug/latency"), { method: "DELETE" });
    for (let i = 0; i < 5; i++) expect((await fetch(apiUrl(leader, `/kv/k${i}`), { method: "PUT", body: "v" })).status).toBe(200);
    // The leader may have answered on the other follower's acknowledgement: wait for this one's.
    const followerSummary = async () => ((await (await fetch(apiUrl(follower, "/debug/latency"))).json()) as LatencySummary).follower;
    const summary = await until("the follower's five acknowledgements", async () => {
      const traced = await followerSummary();
      return traced.samples >= 5 && traced;
    });
    const chain: FollowerLatencyStage[] = ["appendReceived", "appendIssued", "walSynced", "acknowledged"];
    const at = (stage: FollowerLatencyStage) => summary.stages.find((s) => s.stage === stage)!;
    for (const stage of chain) expect(at(stage).samples, stage).toBe(summary.samples);
    for (let i = 1; i < chain.length; i++) expect(at(chain[i]).sinceReceivedUsP50, chain[i]).toBeGreaterThanOrEqual(at(chain[i - 1]).sinceReceivedUsP50);
    // A follower proposes nothing: its own (leader) stages stay empty.
    expect(((await (await fetch(apiUrl(follower, "/debug/latency"))).json()) as LatencySummary).samples).toBe(0);
  });

  it("completes a follower's entries only with an accepted append response at or above them", () => {
    const trace = new LatencyTrace();
    const entry = (index: number): Entry => ({ index, term: 1, type: EntryType.NORMAL, data: new Uint8Array(0) });
    trace.received({ ...newMessage(MessageType.APPEND, 1, 2, 1), entries: [entry(7), entry(8)] });
    trace.walAppendIssued([entry(7), entry(8)]);
    trace.walSynced([entry(7), entry(8)]);
    const response = { ...newMessage(MessageType.APPEND_RESPONSE, 2, 1, 1), index: 7 };
    trace.sending([{ ...response, index: 8, reject: true }, { ...newMessage(MessageType.HEARTBEAT_RESPONSE, 2, 1, 1), index: 8 }]);
    expect(trace.summary().follower.samples).toBe(0);
    trace.sending([response]);
    expect(trace.summary().follower.samples).toBe(1);
    trace.sending([{ ...response, index: 8 }]);
    const follower = trace.summary().follower;
    expect(follower.samples).toBe(2);
    for (const stage of follower.stages) expect(stage.samples, stage.stage).toBe(2);
    trace.reset();
    expect(trace.summary().follower.samples).toBe(0);
  });

  it("traces a follower's entry from its first arrival only: a resend neither restarts nor reopens it", () => {
    const trace = new LatencyTrace();
    const entry = (index: number): Entry => ({ index, term: 1, type: EntryType.NORMAL, data: new Uint8Array(0) });
    const append = (...indexes: number[]) => ({ ...newMessage(MessageType.APPEND, 1, 2, 1), entries: indexes.map(entry) });
    const ack = (index: number) => ({ ...newMessage(MessageType.APPEND_RESPONSE, 2, 1, 1), index });
    trace.received(append(3, 4));
    trace.received(append(4, 5)); // 4 resent: still one sample, from its first arrival
    trace.sending([ack(4)]);
    expect(trace.summary().follower.samples).toBe(2);
    trace.received(append(3, 4)); // both acknowledged already: not reopened
    trace.sending([ack(5)]);
    expect(trace.summary().follower.samples).toBe(3);
    trace.sending([ack(9)]);
    expect(trace.summary().follower.samples).toBe(3);
  });

  it("is off by default: no trace on the node, and /debug/latency answers 404", async () => {
    const leader = await leaderOf(await startThree({ clusterId: "trace" }));
    expect(leader.node.latencyTrace).toBeUndefined();
    expect((await fetch(apiUrl(leader, "/kv/k"), { method: "PUT", body: "v" })).status).toBe(200);
    const answer = await fetch(apiUrl(leader, "/debug/latency"));
    expect(answer.status).toBe(404);
    expect(((await answer.json()) as { message: string }).message).toMatch(/--trace-latency/);
  });

  it("marks acknowledgements only for accepted append responses at or above the entry", () => {
    const trace = new LatencyTrace();
    const low = trace.begin();
    const high = trace.begin();
    trace.proposed(low, 7);
    trace.proposed(high, 8);
    const ack = { ...newMessage(MessageType.APPEND_RESPONSE, 2, 1, 1), index: 7 };
    trace.received({ ...ack, index: 8, reject: true });
    trace.received({ ...newMessage(MessageType.HEARTBEAT_RESPONSE, 2, 1, 1), index: 8 });
    trace.received(ack);
    trace.finish(low);
    trace.finish(high);
    const acked = trace.summary().stages.find((s) => s.stage === "firstFollowerAck")!;
    expect(acked.samples).toBe(1);
    expect(trace.summary().samples).toBe(2);
  });
});
