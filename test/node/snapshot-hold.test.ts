/**
 * A leader holds its next snapshot back while it sends one to a follower (src/node/
 * snapshot-policy.ts): in process, three KV nodes on real TCP, with a transport that loses
 * chosen messages.
 */
import { afterEach, describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/kv/command.js";
import type { KvNode } from "../../src/kv/kv-node.js";
import { MessageType, type Message } from "../../src/proto/schema.js";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/transport.js";
import { eventually, until } from "../waiting.js";
import { closeKvNodes, startThree } from "./kv-nodes.js";

afterEach(closeKvNodes);

/** "follower@index" of every snapshot a node was asked to send (chunks lost or not). */
const snapshotsSent = new Set<string>();

/** Loses every message `lose` picks (as a network would), hands the rest on; notes the snapshots sent. */
class LossyTransport extends TcpTransport {
  constructor(
    options: TcpTransportOptions,
    private readonly lose: (message: Message) => boolean,
  ) {
    super(options);
  }

  override send(messages: readonly Message[]): void {
    for (const message of messages) if (message.type === MessageType.SNAPSHOT) snapshotsSent.add(`${message.to}@${message.snapshot!.meta.index}`);
    super.send(messages.filter((message) => !this.lose(message)));
  }
}

const VALUE = new Uint8Array(64 * 1024).fill(7);
const put = (seq: number) => encodeCommand({ op: "put", clientId: "c1", seq, key: `k${seq % 40}`, value: VALUE });

async function heldBack(node: KvNode): Promise<number> {
  return (await node.node.metrics.snapshotsHeldBack.get()).values[0]?.value ?? 0;
}

describe("snapshots while a snapshot is sent", () => {
  it("the leader takes no snapshot while a follower answers its transfer; the follower then catches up with entries", async () => {
    let lose: (message: Message) => boolean = () => false;
    const nodes = await startThree({
      snapshotEveryEntries: 20,
      // 20-25 keys of 64 KiB: a snapshot of 1.3-1.6 MB, two chunks.
      raft: { snapshotChunkBytes: 1024 * 1024 },
      transport: (options) => new LossyTransport(options, (message) => lose(message)),
    });
    const leader = await until("a leader", () => nodes.find((n) => n.node.status().role === "leader"));
    const lagging = nodes.find((n) => n !== leader)!;
    const laggingId = lagging.node.status().id;
    lose = (m) => m.to === laggingId || m.from === laggingId;
    let seq = 0;
    // Only one snapshot can be due before the transfer starts (a second one, due at 40,
    // could be taken before it, while the leader has not yet sent to the follower).
    while (seq < 25) await leader.node.propose(put(++seq));
    const first = await until("the leader's snapshot", () => leader.node.status().snapshotIndex >= 20 && leader.node.status().snapshotIndex);
    // The follower now needs the snapshot. Its first chunk is lost every time, so the
    // follower rejects the later ones (it expects offset 0): the transfer goes on, answered.
    lose = (m) => m.to === laggingId && m.type === MessageType.SNAPSHOT && m.snapshot!.offset === 0;
    await until("the transfer", () => leader.node.status().progress.find((p) => p.id === laggingId)?.state === "snapshot");
    while (seq < 90) await leader.node.propose(put(++seq));
    // 65-70 entries applied since the snapshot (due at 20, overdue at 80): held back.
    await until("the snapshot held back", async () => (await heldBack(leader)) > 0);
    expect(leader.node.status().snapshotIndex).toBe(first);
    lose = () => false;
    const applied = leader.node.status().appliedIndex;
    await until("the follower catching up", () => lagging.node.status().appliedIndex >= applied);
    // Sent only the snapshot it started with, then the entries after it, which the leader
    // kept. (The follower's own snapshotIndex may have moved on: it snapshots every 20
    // entries too.)
    expect([...snapshotsSent].filter((sent) => sent.startsWith(`${laggingId}@`))).toEqual([`${laggingId}@${first}`]);
    // The transfer over, the held-back snapshot is taken with no further write (checked on
    // the ticks while one is held back, not only after a Ready): at the last applied entry.
    await eventually(async () => expect(leader.node.status().snapshotIndex).toBeGreaterThanOrEqual(applied));
  });
});
