/**
 * End-to-end: real `raftwal node` processes on 127.0.0.1 (the compiled CLI in dist/, which
 * `npm test` builds first), driven through the KV HTTP API. Every process started here is
 * stopped in afterEach; ports are picked free; data lives in a temp dir that is removed.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../waiting.js";
import { KvClient } from "../../src/kv/client.js";
import { findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { NODE_HEAP_FLAGS } from "../../src/cli/v8-heap.js";
import { frameCodec } from "../../src/proto/schema.js";

const clusters: LocalCluster[] = [];
const dirs: string[] = [];
const clients: KvClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const cluster of clusters.splice(0)) await cluster.stop();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function startCluster(nodeArgs: string[] = []): Promise<{ cluster: LocalCluster; client: KvClient }> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-e2e-"));
  dirs.push(dir);
  const cluster = new LocalCluster({
    nodes: 3,
    dir,
    basePort: await findFreeBasePort(3),
    logs: "file",
    // Short ticks keep elections quick; the defaults suit real networks.
    nodeArgs: ["--tick-ms", "20", ...nodeArgs],
  });
  clusters.push(cluster);
  await cluster.start();
  const client = new KvClient({ endpoints: cluster.specs.map((s) => s.apiUrl), operationTimeoutMs: 20_000 });
  clients.push(client);
  return { cluster, client };
}

async function staleRead(cluster: LocalCluster, id: number, key: string): Promise<string | undefined> {
  const client = new KvClient({ endpoints: [cluster.spec(id).apiUrl], operationTimeoutMs: 2000 });
  try {
    return (await client.get(key, { stale: true }))?.toString();
  } finally {
    client.close();
  }
}

describe("a 3-node cluster of processes", () => {
  it("elects a leader and replicates writes to every node", async () => {
    const { cluster, client } = await startCluster();
    const leader = await cluster.waitForLeader();
    expect(leader).toBeGreaterThan(0);
    // Every node runs with the heap flags (v8-heap.ts), ahead of its entry point.
    for (const spec of cluster.specs) {
      const argv = readFileSync(`/proc/${cluster.pid(spec.id)}/cmdline`, "utf8").split("\0");
      expect(argv.slice(1, 1 + NODE_HEAP_FLAGS.length)).toEqual(NODE_HEAP_FLAGS);
    }
    for (let i = 0; i < 20; i++) await client.put(`k${i}`, `v${i}`);
    expect((await client.get("k7"))?.toString()).toBe("v7");
    for (const spec of cluster.specs) {
      await eventually(async () => expect(await staleRead(cluster, spec.id, "k19")).toBe("v19"));
    }
    expect(await client.cas("k1", "v1", "w1")).toEqual({ ok: true });
    expect(await client.cas("k1", "v1", "x1")).toEqual({ ok: false, current: "w1" });
    expect(await client.delete("k2")).toBe(true);
    expect(await client.get("k2")).toBeUndefined();
  });

  it("survives kill -9 of the leader and then of a follower, keeping every acknowledged write", async () => {
    const { cluster, client } = await startCluster();
    const first = await cluster.waitForLeader();
    for (let i = 0; i < 10; i++) await client.put(`a${i}`, `${i}`);
    await cluster.kill(first, "SIGKILL");
    const second = await cluster.waitForLeader(15_000, [first]);
    expect(second).not.toBe(first);
    for (let i = 10; i < 20; i++) await client.put(`a${i}`, `${i}`);
    const follower = cluster.specs.map((s) => s.id).find((id) => id !== first && id !== second)!;
    await cluster.kill(follower, "SIGKILL");
    cluster.startNode(first);
    await cluster.waitForLeader(15_000);
    for (let i = 0; i < 20; i++) expect((await client.get(`a${i}`))?.toString()).toBe(`${i}`);
  });

  it("recovers every write after all nodes restart from disk, snapshots included", async () => {
    const { cluster, client } = await startCluster(["--snapshot-every", "16"]);
    await cluster.waitForLeader();
    for (let i = 0; i < 60; i++) await client.put(`r${i}`, `${i}`);
    const before = await cluster.status(1);
    for (const spec of cluster.specs) await cluster.kill(spec.id, "SIGKILL");
    for (const spec of cluster.specs) cluster.startNode(spec.id);
    await cluster.waitForLeader();
    for (let i = 0; i < 60; i++) expect((await client.get(`r${i}`))?.toString()).toBe(`${i}`);
    const after = await cluster.status(1);
    expect(after?.snapshotIndex).toBeGreaterThan(0);
    expect(after!.snapshotIndex).toBeGreaterThanOrEqual(before!.snapshotIndex);
  });

  it("catches up a node that was down for longer than the snapshot interval", async () => {
    const { cluster, client } = await startCluster(["--snapshot-every", "10"]);
    const leader = await cluster.waitForLeader();
    const lagging = cluster.specs.map((s) => s.id).find((id) => id !== leader)!;
    await cluster.kill(lagging, "SIGKILL");
    for (let i = 0; i < 80; i++) await client.put(`c${i}`, `${i}`);
    const leaderStatus = await cluster.status(leader);
    expect(leaderStatus!.snapshotIndex).toBeGreaterThan(10);
    cluster.startNode(lagging);
    await eventually(async () => expect(await staleRead(cluster, lagging, "c79")).toBe("79"), 20_000);
    expect(await staleRead(cluster, lagging, "c3")).toBe("3");
  });

  it("closes connections that send garbage or a wrong cluster id, and keeps serving", async () => {
    const { cluster, client } = await startCluster();
    await cluster.waitForLeader();
    const port = cluster.spec(1).peerPort;
    const garbage = await sendRaw(port, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(garbage).toBe("closed");
    const body = frameCodec.encode({ handshake: { protocolVersion: 1, clusterId: "another-cluster", nodeId: 2, peerAddress: "", refusal: "", removed: false } });
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(body.length);
    expect(await sendRaw(port, Buffer.concat([prefix, body]))).toBe("closed");
    await client.put("after-bad-input", "fine");
    expect((await client.get("after-bad-input"))?.toString()).toBe("fine");
    expect(cluster.isRunning(1)).toBe(true);
  });
});

/** Connects, writes `bytes`, and reports whether the peer closed the connection within 5 s. */
function sendRaw(port: number, bytes: Buffer): Promise<"closed" | "open"> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("open");
    }, 5000);
    socket.on("data", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve("closed");
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET") return;
      clearTimeout(timer);
      reject(error);
    });
  });
}
