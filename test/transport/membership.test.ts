/**
 * The transport follows the cluster's configuration: setPeers adds and drops links; a
 * node outside the peer set still gets through (thesis 4.1: it may be a leader or a
 * candidate this node has not heard of yet) unless it was removed, which is refused at the
 * handshake with the reason on both ends; a node with no configuration yet accepts its
 * first leader and answers it at the address the leader's handshake carries.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CLUSTER_ID, heartbeat, Inbox, LOCALHOST, recordingLogger, Resources, startCluster, waitUntil, type ClusterNode } from "./helpers.js";

const resources = new Resources();
afterEach(() => resources.closeAll());

type Refusal = { peer: number; refusal: string; removed: boolean };

/** Every refusal `node` hears from now on, in order. */
function recordRefusals(node: ClusterNode): Refusal[] {
  const refusals: Refusal[] = [];
  node.transport.onRefused((peer, refusal, removed) => refusals.push({ peer, refusal, removed }));
  return refusals;
}

/**
 * Node 2 counts node 1 as removed; node 1 dials it again (a changed address entry forces a
 * new connection) with a message of `term`: node 1 hears it was removed, and nothing of
 * that connection reaches node 2.
 */
async function expectRedialRefusedAsRemoved(one: ClusterNode, two: ClusterNode, term: number): Promise<void> {
  two.transport.setRemovedPeerCheck((id) => id === 1);
  const refusals = recordRefusals(one);
  one.transport.setPeers(new Map([[2, { ...two.transport.address(), host: "localhost" }]]));
  one.transport.send([heartbeat(1, 2, term)]);
  await waitUntil("node 1 to hear its refusal", () => refusals.length > 0);
  expect(refusals[0]).toMatchObject({ peer: 2, refusal: "node 1 was removed from the cluster", removed: true });
  expect(two.inbox.count((m) => m.term === term)).toBe(0);
}

describe("the peer set follows the configuration", () => {
  it("refuses a node dropped from the peer set, and the refused node hears why (and that it was removed)", async () => {
    const [one, two] = await startCluster(resources, 2);
    one.transport.send([heartbeat(1, 2)]);
    await two.inbox.waitFor(1);
    // Node 2's configuration drops node 1 and lists it as removed.
    two.transport.setPeers(new Map());
    await expectRedialRefusedAsRemoved(one, two, 7);
    await waitUntil("node 2's log line", () => two.logger.lines.some((l) => l.message === "peer connection rejected"));
    expect(two.logger.lines.find((l) => l.message === "peer connection rejected")?.fields.reason).toContain("unknown node id 1");
  });

  it("dropping a peer closes the connection it dialled too: its next dial is refused and it hears that it was removed", async () => {
    const [one, two] = await startCluster(resources, 2);
    one.transport.send([heartbeat(1, 2)]);
    await two.inbox.waitFor(1);
    const refusals = recordRefusals(one);
    two.transport.setRemovedPeerCheck((id) => id === 1);
    two.transport.setPeers(new Map());
    // Node 1 changes nothing: its link to node 2 is closed from node 2's end, and it redials.
    await waitUntil("node 1 to hear its refusal", () => refusals.length > 0);
    expect(refusals[0]).toMatchObject({ peer: 2, refusal: "node 1 was removed from the cluster", removed: true });
    one.transport.send([heartbeat(1, 2, 9)]);
    await waitUntil("node 1 to be refused again", () => refusals.length > 1);
    expect(two.inbox.count((m) => m.term === 9)).toBe(0);
  });

  it("a node added to the peer set is dialled and accepted; one outside it is accepted too (thesis 4.1)", async () => {
    const [one, two, three] = await startCluster(resources, 3);
    one.transport.setPeers(new Map([[2, two.transport.address()]]));
    three.transport.setPeers(new Map([[2, two.transport.address()]]));
    two.transport.setPeers(new Map([[3, three.transport.address()]]));
    three.transport.send([heartbeat(3, 2, 4)]);
    await two.inbox.waitFor(1, (m) => m.term === 4);
    // Node 1 is in no configuration node 2 knows: it may be a leader node 2 has not heard of yet.
    one.transport.send([heartbeat(1, 2, 5)]);
    await two.inbox.waitFor(1, (m) => m.term === 5);
    two.transport.setPeers(new Map([[1, one.transport.address()], [3, three.transport.address()]]));
    one.transport.send([heartbeat(1, 2, 6)]);
    await two.inbox.waitFor(1, (m) => m.term === 6);
    expect(two.logger.lines.some((l) => l.message === "peer connection rejected")).toBe(false);
  });

  it("a node outside the peer set gets through unless it was removed", async () => {
    const [one, two, three] = await startCluster(resources, 3);
    // Node 2 installed a snapshot whose configuration names only node 3: node 1 may be the
    // leader catching it up (added after that snapshot), so it must still get through.
    two.transport.setPeers(new Map([[3, three.transport.address()]]));
    one.transport.send([heartbeat(1, 2, 4)]);
    await two.inbox.waitFor(1, (m) => m.term === 4);
    // A removed id is refused, and told so.
    await expectRedialRefusedAsRemoved(one, two, 5);
  });

  it("a node with no configuration yet accepts its first leader and answers at the address from the handshake", async () => {
    const [leader] = await startCluster(resources, 1);
    const logger = recordingLogger();
    const joiner = resources.transport({
      nodeId: 4,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port: 0 },
      peers: new Map(),
      logger,
      backoff: { initialDelayMs: 5, delayMsMax: 50 },
    });
    await joiner.start();
    const joinerInbox = new Inbox(joiner);
    const leaderAddress = leader.transport.address();
    // The leader advertises its address in the handshake (a transport of its own, built as a node builds it).
    const advertising = resources.transport({
      nodeId: 1,
      clusterId: CLUSTER_ID,
      listen: { host: LOCALHOST, port: 0 },
      peers: new Map([[4, joiner.address()]]),
      advertisedAddress: `${leaderAddress.host}:${leaderAddress.port}`,
      logger: recordingLogger(),
    });
    await advertising.start();
    advertising.send([heartbeat(1, 4, 3)]);
    await joinerInbox.waitFor(1);
    joiner.send([{ ...heartbeat(4, 1, 3), type: 8 }]);
    await leader.inbox.waitFor(1, (m) => m.from === 4);
    expect(logger.lines.some((l) => l.message === "learned a peer's address from its handshake")).toBe(true);
  });
});
