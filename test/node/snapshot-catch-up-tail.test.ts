/**
 * The catch-up tail (src/node/snapshot-policy.ts, compactionPoint): a follower cut off for a
 * while, during which the leader snapshots, catches up with entries the leader kept behind
 * its snapshot, not with the snapshot. In process, three KV nodes on real TCP, with a
 * transport that loses the messages to and from one follower while it is cut off.
 */
import { afterEach, describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/kv/command.js";
import { MessageType, type Message } from "../../src/proto/schema.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/transport.js";
import { until } from "../waiting.js";
import { closeKvNodes, startThree } from "./kv-nodes.js";

afterEach(closeKvNodes);

/** Loses every message `lose` picks; counts the snapshot chunks sent to each node. */
class CuttingTransport extends TcpTransport {
  static snapshotChunksTo = new Map<number, number>();

  constructor(
    options: TcpTransportOptions,
    private readonly lose: (message: Message) => boolean,
  ) {
    super(options);
  }

  override send(messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.type === MessageType.SNAPSHOT) CuttingTransport.snapshotChunksTo.set(message.to, (CuttingTransport.snapshotChunksTo.get(message.to) ?? 0) + 1);
    }
    super.send(messages.filter((message) => !this.lose(message)));
  }
}

const put = (seq: number) => encodeCommand({ op: "put", clientId: "c1", seq, key: `k${seq % 10}`, value: new Uint8Array(100).fill(seq % 256) });

/** Cuts a follower off after 60 writes, writes 90 more (the leader snapshots every 30), reconnects it; what it was sent. */
async function cutOffAndCatchUp(snapshotCatchUpEntries: number): Promise<{ snapshotChunks: number; installed: number; leaderSnapshotIndex: number; laggingAppliedWhenCut: number }> {
  CuttingTransport.snapshotChunksTo.clear();
  let cutOff = 0;
  const nodes = await startThree({
    snapshotEveryEntries: 30,
    snapshotCatchUpEntries,
    transport: (options) => new CuttingTransport(options, (m) => cutOff !== 0 && (m.to === cutOff || m.from === cutOff)),
  });
  const leader = await until("a leader", () => nodes.find((n) => n.node.status().role === "leader"));
  const lagging = nodes.find((n) => n !== leader)!;
  let seq = 0;
  while (seq < 60) await leader.node.propose(put(++seq));
  const caughtUpTo = leader.node.status().appliedIndex;
  await until("the follower applying the first writes", () => lagging.node.status().appliedIndex >= caughtUpTo);
  const laggingAppliedWhenCut = lagging.node.status().appliedIndex;
  cutOff = lagging.node.status().id;
  while (seq < 150) await leader.node.propose(put(++seq));
  // The leader has snapshotted past everything the follower holds.
  const leaderSnapshotIndex = await until("the leader's snapshot past the follower", () => {
    const index = leader.node.status().snapshotIndex;
    return index > laggingAppliedWhenCut + 30 && index;
  });
  // With a tail its log still starts at or before what the follower lacks; without one, after.
  expect(leader.node.status().firstIndex <= laggingAppliedWhenCut + 1).toBe(snapshotCatchUpEntries > 0);
  cutOff = 0;
  const applied = leader.node.status().appliedIndex;
  await until("the follower catching up", () => lagging.node.status().appliedIndex >= applied);
  expect(lagging.kv.hash()).toBe(leader.kv.hash());
  const installed = (await lagging.node.metrics.snapshotsInstalled.get()).values[0]?.value ?? 0;
  return { snapshotChunks: CuttingTransport.snapshotChunksTo.get(lagging.node.status().id) ?? 0, installed, leaderSnapshotIndex, laggingAppliedWhenCut };
}

describe("the catch-up tail behind a snapshot", () => {
  it("a follower behind the leader's snapshot but within the tail gets entries, not the snapshot", async () => {
    const result = await cutOffAndCatchUp(100);
    expect(result.leaderSnapshotIndex).toBeGreaterThan(result.laggingAppliedWhenCut);
    expect([result.snapshotChunks, result.installed]).toEqual([0, 0]);
  });

  it("without a tail the same follower needs the snapshot", async () => {
    const result = await cutOffAndCatchUp(0);
    expect(result.leaderSnapshotIndex).toBeGreaterThan(result.laggingAppliedWhenCut);
    expect(result.snapshotChunks).toBeGreaterThan(0);
    expect(result.installed).toBeGreaterThanOrEqual(1);
  });
});
