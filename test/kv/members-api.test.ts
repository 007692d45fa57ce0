/**
 * The KV API's membership routes (/members) on in-process nodes over TCP and the
 * in-memory file system: the answers and their redirects to the leader, a learner added,
 * caught up, promoted and removed through KvClient, and every membership error with the
 * status the table gives it (http-errors.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../waiting.js";
import { findFreeBasePort } from "../../src/cli/local-cluster.js";
import { KvClient, type MembersAnswer } from "../../src/kv/client.js";
import { errorAnswer } from "../../src/kv/http-errors.js";
import { startKvNode, type KvNode, type KvNodeOptions, type KvPeerConfig } from "../../src/kv/kv-node.js";
import { silentLogger } from "../../src/node/logger.js";
import { RaftErrorCode, RaftwalError } from "../../src/errors.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";

const started: KvNode[] = [];
afterAll(async () => {
  for (const node of started.splice(0)) await node.close().catch(() => undefined);
});

async function start(options: Partial<KvNodeOptions> & { id: number }): Promise<KvNode> {
  const node = await startKvNode({
    clusterId: "members-api",
    dataDir: `/data/node-${options.id}`,
    storage: { fs: new MemoryFileSystem() },
    tickMs: 10,
    logger: silentLogger,
    ...options,
  });
  started.push(node);
  return node;
}

const url = (node: KvNode) => `http://127.0.0.1:${node.apiAddress.port}`;

async function answer(base: string, method: string, path: string, body?: string): Promise<{ status: number; body: Record<string, unknown>; location: string | null }> {
  const response = await fetch(`${base}${path}`, { method, body, redirect: "manual" });
  const text = await response.text();
  const isJson = response.headers.get("content-type") === "application/json";
  return { status: response.status, body: isJson ? (JSON.parse(text) as Record<string, unknown>) : { text }, location: response.headers.get("location") };
}

const roles = (view: MembersAnswer) => view.members.map((member) => [member.id, member.role]);

describe("/members on a 3-node cluster", () => {
  let base: number;
  let nodes: KvNode[];
  let leader: KvNode;
  let follower: KvNode;
  let client: KvClient;

  beforeAll(async () => {
    base = await findFreeBasePort(5);
    const peers: KvPeerConfig[] = [1, 2, 3].map((id) => ({ id, host: "127.0.0.1", port: base + id - 1, api: { host: "127.0.0.1", port: base + 100 + id - 1 } }));
    // A learner is promoted only once it has every entry of the leader's log.
    nodes = await Promise.all(peers.map((peer) => start({ id: peer.id, initialClusterState: "new", peers, raft: { learnerLagEntriesMax: 0 } })));
    leader = await until("a leader", () => nodes.find((node) => node.node.status().role === "leader"));
    follower = nodes.find((node) => node !== leader)!;
    await until("the follower to know the leader", () => follower.node.status().leader === leader.node.status().id);
    // Through a follower: the client follows the redirects.
    client = new KvClient({ endpoints: [url(follower)], operationTimeoutMs: 15_000 });
    for (let i = 0; i < 20; i++) await client.put(`k${i}`, `v${i}`);
  });
  afterAll(() => client?.close());

  it("GET /members on a follower redirects to the leader, which answers with every member and its progress", async () => {
    const redirected = await answer(url(follower), "GET", "/members");
    expect(redirected.status).toBe(307);
    expect(redirected.location).toBe(`${url(leader)}/members`);
    const view = await client.members();
    expect(view).toMatchObject({ node: leader.node.status().id, leader: leader.node.status().id, committed: true, joint: false, index: 1 });
    expect(roles(view)).toEqual([[1, "voter"], [2, "voter"], [3, "voter"]]);
    expect(view.members[0]).toMatchObject({ peerAddress: `127.0.0.1:${base}`, apiAddress: `127.0.0.1:${base + 100}` });
    for (const member of view.members) expect(member.match).toBeGreaterThan(20);
  });

  it("GET /members?stale=true answers from the node asked, without progress", async () => {
    const { status, body } = await answer(url(follower), "GET", "/members?stale=true");
    expect(status).toBe(200);
    expect(body).toMatchObject({ node: follower.node.status().id, leader: leader.node.status().id });
    expect((body as unknown as MembersAnswer).members.every((member) => member.match === undefined)).toBe(true);
  });

  it("a learner added through a follower catches up, is promoted, shows as a voter in /status, and stops once removed", async () => {
    const fresh = await start({ id: 4, initialClusterState: "join", listen: { host: "127.0.0.1", port: base + 3 }, apiListen: { host: "127.0.0.1", port: base + 103 } });
    expect((await answer(url(fresh), "GET", "/status")).body).toMatchObject({ id: 4, membership: "joining", voter: false });
    // A joining node knows no leader: it cannot redirect.
    expect(await answer(url(fresh), "GET", "/members")).toMatchObject({ status: 503, body: { error: "KV_ERR_NO_LEADER" } });
    const added = await client.addLearner({ id: 4, peerAddress: `127.0.0.1:${base + 3}`, apiAddress: `127.0.0.1:${base + 103}` });
    expect(roles(added)).toEqual([[1, "voter"], [2, "voter"], [3, "voter"], [4, "learner"]]);
    expect(added.index).toBeGreaterThan(1);
    await until("the learner to catch up", async () => {
      const view = await client.members();
      return view.members.find((member) => member.id === 4)?.match === view.lastIndex;
    });
    expect(await answer(url(fresh), "GET", "/kv/k19?stale=true")).toMatchObject({ status: 200, body: { text: "v19" } });
    expect(roles(await client.promote(4))).toEqual([[1, "voter"], [2, "voter"], [3, "voter"], [4, "voter"]]);
    await until("node 4 to apply its promotion", () => fresh.node.status().membership === "voter");
    expect((await answer(url(fresh), "GET", "/status")).body).toMatchObject({ id: 4, membership: "voter", voter: true, removed: false });
    const removedStop = new Promise<Error>((resolve) => fresh.node.onFatal(resolve));
    expect(roles(await client.removeMember(4))).toEqual([[1, "voter"], [2, "voter"], [3, "voter"]]);
    expect(await removedStop).toMatchObject({ code: "NODE_ERR_REMOVED" });
  });

  it("answers refused changes with the core's code and the table's status", async () => {
    const leaderUrl = url(leader);
    const peerAddress = `127.0.0.1:${base + 4}`;
    expect(await answer(leaderUrl, "DELETE", "/members/99")).toMatchObject({ status: 404, body: { error: "RAFT_ERR_UNKNOWN_MEMBER" } });
    expect(await answer(leaderUrl, "POST", "/members/99/promote")).toMatchObject({ status: 404, body: { error: "RAFT_ERR_UNKNOWN_MEMBER" } });
    expect(await answer(leaderUrl, "POST", "/members", JSON.stringify({ id: 2, peerAddress }))).toMatchObject({ status: 400, body: { error: "RAFT_ERR_INVALID_CONFIG_CHANGE" } });
    // Ids are never reused: node 4 was removed by the previous test.
    expect(await answer(leaderUrl, "POST", "/members", JSON.stringify({ id: 4, peerAddress }))).toMatchObject({
      status: 400,
      body: { error: "RAFT_ERR_INVALID_CONFIG_CHANGE", message: expect.stringContaining("never reused") },
    });
    // A learner that never answers has none of the log: it may not be promoted.
    await client.addLearner({ id: 5, peerAddress });
    expect(await answer(leaderUrl, "POST", "/members/5/promote")).toMatchObject({ status: 409, body: { error: "RAFT_ERR_LEARNER_BEHIND" } });
    const error = await client.promote(5).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 409, code: "RAFT_ERR_LEARNER_BEHIND" });
    await client.removeMember(5);
  });

  it("KvClient retries a change refused because another is in progress: three learners added at once all join", async () => {
    const ids = [6, 7, 8];
    // Each in its own request at the same moment: the leader takes one change at a time.
    await Promise.all(ids.map((id) => client.addLearner({ id, peerAddress: `127.0.0.1:${base + 4}` })));
    expect(roles(await client.members())).toEqual([[1, "voter"], [2, "voter"], [3, "voter"], [6, "learner"], [7, "learner"], [8, "learner"]]);
    for (const id of ids) await client.removeMember(id);
  });

  it("refuses malformed requests with 400, 404 or 405 before anything is proposed", async () => {
    const leaderUrl = url(leader);
    const before = (await client.members()).index;
    expect(await answer(leaderUrl, "POST", "/members", "not json")).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer(leaderUrl, "POST", "/members", JSON.stringify({ id: 0, peerAddress: "127.0.0.1:1" }))).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer(leaderUrl, "POST", "/members", JSON.stringify({ id: 7, peerAddress: "nowhere" }))).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer(leaderUrl, "POST", "/members", JSON.stringify({ id: 7, peerAddress: "127.0.0.1:1", apiAddress: 3 }))).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer(leaderUrl, "DELETE", "/members/abc")).toMatchObject({ status: 400, body: { error: "KV_ERR_BAD_REQUEST" } });
    expect(await answer(leaderUrl, "PUT", "/members")).toMatchObject({ status: 405, body: { error: "KV_ERR_METHOD_NOT_ALLOWED" } });
    expect(await answer(leaderUrl, "GET", "/members/2/promote")).toMatchObject({ status: 405, body: { error: "KV_ERR_METHOD_NOT_ALLOWED" } });
    expect(await answer(leaderUrl, "POST", "/members/2/demote")).toMatchObject({ status: 404, body: { error: "KV_ERR_NO_ROUTE" } });
    expect((await client.members()).index).toBe(before);
  });
});

describe("/members on a single node whose change cannot commit", () => {
  it("a change that times out answers 503 NODE_ERR_TIMEOUT; the next one 409 RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS; the last voter cannot be removed (400)", async () => {
    const port = await findFreeBasePort(2);
    const node = await start({
      id: 1,
      initialClusterState: "new",
      peers: [{ id: 1, host: "127.0.0.1", port, api: { host: "127.0.0.1", port: port + 100 } }],
      membershipTimeoutMs: 300,
      // Without CheckQuorum the stuck leader keeps leading, so it can answer the next request itself.
      raft: { checkQuorum: false },
    });
    await until("a leader", () => node.node.status().role === "leader");
    const base = url(node);
    expect(await answer(base, "DELETE", "/members/1")).toMatchObject({ status: 400, body: { error: "RAFT_ERR_LAST_VOTER" } });
    // Node 2 never runs: once it is a voter, a majority of {1, 2} can never acknowledge anything.
    expect((await answer(base, "POST", "/members", JSON.stringify({ id: 2, peerAddress: `127.0.0.1:${port + 1}` }))).status).toBe(200);
    expect(await answer(base, "POST", "/members/2/promote")).toMatchObject({ status: 503, body: { error: "NODE_ERR_TIMEOUT" } });
    expect(await answer(base, "DELETE", "/members/2")).toMatchObject({ status: 409, body: { error: "RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS" } });
    expect(await answer(base, "GET", "/members")).toMatchObject({ status: 200, body: { committed: false } });
  });

  it("maps a leader not ready yet to 503 (the node waits for it, so only the table shows it)", () => {
    expect(errorAnswer(new RaftwalError(RaftErrorCode.LEADER_NOT_READY, "not yet")).status).toBe(503);
  });
});
