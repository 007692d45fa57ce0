/**
 * End-to-end membership with real `raftwal node` processes on 127.0.0.1 (the compiled CLI
 * in dist/, which `npm test` builds first), changed through the KV API's /members routes:
 * replacing a killed node, growing 3 -> 5 and shrinking back under clients' writes, and
 * `raftwal cluster`'s supervisor with a node that refuses to start and one that is removed.
 * Every process started here is stopped in afterEach; ports are picked free (with room for
 * the nodes that join); data lives in a temp dir that is removed.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterSupervisor } from "../../src/cli/cluster-command.js";
import { ExitCode } from "../../src/cli/io.js";
import { API_PORT_OFFSET, CLI_ENTRY, findFreeBasePort, LocalCluster, type NodeExit } from "../../src/cli/local-cluster.js";
import { KvClient, KvError, type MembersAnswer } from "../../src/kv/client.js";
import { eventually } from "../waiting.js";

const clusters: LocalCluster[] = [];
const supervisors: ClusterSupervisor[] = [];
const dirs: string[] = [];
const clients: KvClient[] = [];

afterEach(async () => {
  for (const supervisor of supervisors.splice(0)) supervisor.stop();
  for (const client of clients.splice(0)) client.close();
  for (const cluster of clusters.splice(0)) await cluster.stop();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Nodes that may ever exist in one test: 3 founding members and 2 that join. */
const NODES_MAX = 5;

interface Started {
  cluster: LocalCluster;
  /** Talks to every API that may ever exist (a node that is not up refuses the connection: the client moves on). */
  client: KvClient;
  exits: Map<number, NodeExit[]>;
  dir: string;
  endpoints: string[];
}

async function startCluster(nodeArgs: string[] = []): Promise<Started> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-e2e-membership-"));
  dirs.push(dir);
  const basePort = await findFreeBasePort(NODES_MAX);
  // Short ticks keep elections quick; the defaults suit real networks.
  const cluster = new LocalCluster({ nodes: 3, dir, basePort, logs: "file", nodeArgs: ["--tick-ms", "20", ...nodeArgs] });
  clusters.push(cluster);
  const exits = new Map<number, NodeExit[]>();
  cluster.onExit((id, exit) => exits.set(id, [...(exits.get(id) ?? []), exit]));
  await cluster.start();
  const endpoints = Array.from({ length: NODES_MAX }, (_, i) => `http://127.0.0.1:${basePort + API_PORT_OFFSET + i}`);
  const client = new KvClient({ endpoints, operationTimeoutMs: 20_000 });
  clients.push(client);
  return { cluster, client, exits, dir, endpoints };
}

/** Promotes learner `id` once it has caught up enough: RAFT_ERR_LEARNER_BEHIND until then (bounded); any other error fails. */
async function promoteWhenCaughtUp(cluster: LocalCluster, id: number, timeoutMs = 20_000): Promise<MembersAnswer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await cluster.promote(id);
    } catch (error) {
      if (!(error instanceof KvError && error.code === "RAFT_ERR_LEARNER_BEHIND") || Date.now() > deadline) throw error;
    }
    await sleep(50);
  }
}

async function staleRead(apiUrl: string, key: string): Promise<string | undefined> {
  const client = new KvClient({ endpoints: [apiUrl], operationTimeoutMs: 2000 });
  try {
    return (await client.get(key, { stale: true }))?.toString();
  } finally {
    client.close();
  }
}

/** Runs `raftwal node` with `args` until it exits (bounded: killed after 30 s); its exit code and last plain stderr line. */
async function runNode(args: string[]): Promise<{ code: number | null; lastLine: string | undefined }> {
  const child = spawn(process.execPath, [CLI_ENTRY, "node", "--cluster-id", "local", "--log-level", "warn", "--tick-ms", "20", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, lastLine: stderr.split("\n").filter((line) => line !== "" && !line.startsWith("{")).pop() };
}

const roles = (answer: MembersAnswer) => answer.members.map((member) => [member.id, member.role]);

/** A client writing unique keys one after another until stopped; remembers every acknowledged write. */
class Writer {
  readonly acknowledged = new Map<string, string>();
  failures = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: KvClient,
    private readonly prefix: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const key = `${this.prefix}-${i}`;
      try {
        await this.client.put(key, `value-${i}`);
        this.acknowledged.set(key, `value-${i}`);
      } catch {
        this.failures++; // not acknowledged: it may or may not have happened
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describe("membership of a cluster of processes", () => {
  it("replaces a killed leader: remove it, a new node joins and gets the state by snapshot, is promoted, and counts in the majority", async () => {
    const { cluster, client } = await startCluster(["--snapshot-every", "10"]);
    const dead = await cluster.waitForLeader();
    for (let i = 0; i < 40; i++) await client.put(`r${i}`, `${i}`);
    await cluster.kill(dead, "SIGKILL");
    await cluster.waitForLeader(15_000, [dead]);
    expect(roles(await cluster.removeNode(dead))).toEqual([1, 2, 3].filter((id) => id !== dead).map((id) => [id, "voter"]));
    const fresh = await cluster.joinNode();
    expect(fresh.id).toBe(4);
    await eventually(async () => {
      const view = await client.members();
      expect(view.members.find((member) => member.id === 4)).toMatchObject({ role: "learner", match: view.lastIndex });
    });
    // Its log started from the leader's snapshot: the entries it missed were compacted away.
    expect((await cluster.status(4))?.snapshotIndex).toBeGreaterThan(0);
    expect(await staleRead(fresh.apiUrl, "r39")).toBe("39");
    expect(roles(await promoteWhenCaughtUp(cluster, 4))).toEqual([...[1, 2, 3].filter((id) => id !== dead), 4].map((id) => [id, "voter"]));
    expect(await cluster.status(4)).toMatchObject({ membership: "voter", voter: true });
    // {the other survivor, 4} must now be a majority of 3: stop one original survivor.
    const survivors = [1, 2, 3].filter((id) => id !== dead);
    await cluster.kill(survivors[0], "SIGKILL");
    await client.put("after", "replacement");
    for (let i = 0; i < 40; i++) expect((await client.get(`r${i}`))?.toString()).toBe(`${i}`);
    expect((await client.get("after"))?.toString()).toBe("replacement");
  });

  it("grows 3 -> 5 and shrinks back to 3 (removing the leader) while four clients write; every acknowledged write is kept and the nodes converge", async () => {
    const { cluster, client, exits, endpoints } = await startCluster(["--snapshot-every", "200"]);
    await cluster.waitForLeader();
    // Four clients (sessions) writing at once, each its own keys.
    const writers = [1, 2, 3, 4].map((n) => {
      const writerClient = new KvClient({ endpoints, operationTimeoutMs: 20_000 });
      clients.push(writerClient);
      return new Writer(writerClient, `load${n}`);
    });
    // Both at once: each asks to be added, and one of them finds the other's change in progress (it retries).
    const [four, five] = await Promise.all([cluster.joinNode(), cluster.joinNode()]);
    await promoteWhenCaughtUp(cluster, four.id);
    const grown = await promoteWhenCaughtUp(cluster, five.id);
    expect(roles(grown)).toEqual([1, 2, 3, 4, 5].map((id) => [id, "voter"]));
    // Shrink: the leader first (it leads until its removal commits, then hands over), then another founding member.
    const leader = grown.leader;
    await cluster.removeNode(leader);
    const other = [1, 2, 3].find((id) => id !== leader)!;
    const shrunk = await cluster.removeNode(other);
    await Promise.all(writers.map((writer) => writer.stop()));
    const acknowledged = new Map(writers.flatMap((writer) => [...writer.acknowledged]));
    console.log(`acknowledged writes: ${acknowledged.size}; not acknowledged: ${writers.reduce((n, w) => n + w.failures, 0)}`);
    const remaining = [1, 2, 3, 4, 5].filter((id) => id !== leader && id !== other);
    expect(roles(shrunk)).toEqual(remaining.map((id) => [id, "voter"]));
    // The removed nodes learned of their removal and stopped by themselves.
    for (const id of [leader, other]) expect(exits.get(id)).toEqual([expect.objectContaining({ code: 0, signal: null })]);
    expect(acknowledged.size).toBeGreaterThan(100);
    for (const [key, value] of acknowledged) expect((await client.get(key))?.toString(), key).toBe(value);
    // Converged: the same applied index everywhere, and every node holds every acknowledged write.
    await eventually(async () => {
      const applied = await Promise.all(remaining.map(async (id) => (await cluster.status(id))?.appliedIndex));
      expect(new Set(applied).size).toBe(1);
    });
    for (const id of remaining) {
      const apiUrl = cluster.spec(id).apiUrl;
      for (const [key, value] of acknowledged) expect(await staleRead(apiUrl, key), `${key} on node ${id}`).toBe(value);
    }
  });
});

describe("raftwal cluster's supervisor", () => {
  it("does not restart a node that refused its empty data directory, nor one that was removed; it prints why (and the removed id cannot join again)", async () => {
    const { cluster, dir, exits } = await startCluster();
    const lines: string[] = [];
    const supervisor = new ClusterSupervisor(cluster, { write: (text: string) => lines.push(...text.trimEnd().split("\n")) }, { restartDelayMs: 100 });
    supervisors.push(supervisor);
    supervisor.start();
    const leader = await cluster.waitForLeader();
    const [lost, kept] = [1, 2, 3].filter((id) => id !== leader);
    // Its disk is gone: restarted as an existing member on an empty directory, it must refuse.
    await cluster.kill(lost, "SIGKILL");
    await rm(join(dir, `node-${lost}`), { recursive: true, force: true });
    const refusal = await eventually(async () => {
      const line = lines.find((l) => l.startsWith(`node ${lost} refused to start`));
      if (!line) throw new Error(`no refusal yet: ${lines.join(" | ")}`);
      return line;
    });
    expect(refusal).toMatch(/not restarting it: raftwal: data directory .* holds no state.*\[NODE_ERR_EMPTY_DATA_DIR\]$/);
    expect(lines.filter((l) => l.startsWith(`node ${lost} restarted`))).toHaveLength(1);
    expect(supervisor.pendingRestarts()).toEqual([]);
    expect(cluster.isRunning(lost)).toBe(false);
    expect(exits.get(lost)?.at(-1)).toMatchObject({ code: ExitCode.REFUSED, lastLine: expect.stringContaining("NODE_ERR_EMPTY_DATA_DIR") });
    // Replace nothing: remove both the lost node and a running one; the running one stops by itself.
    await cluster.removeNode(lost);
    await cluster.removeNode(kept);
    // Its id cannot come back, not even on a fresh directory: asking to join is refused, the node exits 1 with one line.
    const rejoin = await runNode(["--id", String(lost), "--dir", join(dir, "fresh"), "--listen", `127.0.0.1:${await findFreeBasePort(1)}`, "--join", cluster.spec(leader).apiUrl]);
    expect(rejoin.code).toBe(1);
    expect(rejoin.lastLine).toMatch(new RegExp(`^raftwal: node ${lost} could not join through http://.*: node ${lost} was removed from this cluster; ids are never reused .*\\[RAFT_ERR_INVALID_CONFIG_CHANGE\\]$`));
    const stopped = lines.find((l) => l.startsWith(`node ${kept} stopped; not restarting it`));
    expect(stopped).toMatch(/node \d was removed from the cluster and stopped/);
    expect(supervisor.pendingRestarts()).toEqual([]);
    expect(cluster.specs.map((spec) => spec.id)).toEqual([leader]);
  });
});
