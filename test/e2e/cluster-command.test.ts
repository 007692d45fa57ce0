/**
 * `raftwal cluster` as a newcomer runs it: the real command (the compiled CLI in dist/) in a
 * process group of its own, signalled like a terminal signals it (Ctrl-C reaches the whole
 * foreground group). What it prints (the README's tour shows the same lines), how it
 * refuses ports another cluster holds, how its supervisor gives up a node that cannot
 * start, and how Ctrl-C stops the nodes in order (commit index saved) or, pressed again,
 * at once. Every process started here is stopped in afterEach; ports are picked free.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterSupervisor } from "../../src/cli/cluster-command.js";
import { CLI_ENTRY, findFreeBasePort, LocalCluster } from "../../src/cli/local-cluster.js";
import { runCli } from "../../src/cli/program.js";
import { KvClient } from "../../src/kv/client.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raftwal-cluster-cmd-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `raftwal cluster ...` in its own process group, its output collected line by line. */
class ClusterProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI_ENTRY, "cluster", ...args], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => (this.stdout += text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.exited = once(this.child, "exit").then(([code]) => code as number | null);
    cleanups.push(() => this.kill());
  }

  /** What a terminal's Ctrl-C does: SIGINT to every process of the foreground group. */
  interrupt(): void {
    process.kill(-this.child.pid!, "SIGINT");
  }

  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.stdout);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await sleep(50);
    }
  }

  pids(): number[] {
    return [...this.stdout.matchAll(/^node \d+: .* pid (\d+) /gm)].map((match) => Number(match[1]));
  }

  /** Kills the supervisor and every node it printed (afterEach). */
  private async kill(): Promise<void> {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Holds `port` until the test ends (connections to it are dropped at once). */
function listen(server: net.Server, port: number): Promise<void> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => sockets.add(socket.on("close", () => sockets.delete(socket))));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(resolve);
        for (const socket of sockets) socket.destroy();
      }),
  );
  return new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", () => resolve()));
}

/** An HTTP server answering /status as node `id` of cluster `clusterId`, leading in term 5. */
async function fakeNodeApi(port: number, clusterId: string, id = 1): Promise<void> {
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ id, clusterId, role: "leader", term: 5, leader: id, commitIndex: 9, appliedIndex: 9 }));
  });
  await listen(server, port);
}

async function isFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The output lines of the README's short tour (the block after "## A short tour"), made comparable. */
function readmeTourLines(): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## A short tour"));
  const block = section.slice(section.indexOf("```\n") + 4, section.indexOf("\n```", section.indexOf("```\n") + 4));
  return block.split("\n").map(normalise);
}

/** Pids, terms and leader ids vary from run to run. */
function normalise(line: string): string {
  return line.replace(/pid \d+/, "pid P").replace(/^leader: node \d+ \(term \d+\) at http:\/\/127\.0\.0\.1:\d+$/, "leader: node N (term T) at URL");
}

describe("raftwal cluster on ports another cluster holds", () => {
  it("refuses to start, naming the port, and never prints the other cluster's leader", async () => {
    const dir = await tempDir();
    const base = await findFreeBasePort(3);
    // Another cluster's node 1: its peer port, and an API answering /status as that cluster's leader.
    await listen(net.createServer(), base);
    await fakeNodeApi(base + 100, "another-cluster");
    const run = new ClusterProcess(["--base-port", String(base), "--dir", join(dir, "data")]);
    expect(await withTimeout(run.exited, 20_000, "raftwal cluster")).toBe(1);
    expect(run.stderr).toBe(
      `raftwal: cluster did not start: port ${base} (node 1's peer port) is in use on 127.0.0.1: another raftwal cluster? Stop it, or choose other ports with --base-port (logs in ${join(dir, "data")})\n`,
    );
    expect(run.stdout).not.toMatch(/leader/);
    // It started no node: the ports of nodes 2 and 3 are still free.
    for (const port of [base + 1, base + 2, base + 101, base + 102]) expect(await isFree(port), String(port)).toBe(true);
  });

  it("a /status from another cluster, or from another node id, is never taken for this cluster's node", async () => {
    const dir = await tempDir();
    const base = await findFreeBasePort(2);
    const cluster = new LocalCluster({ nodes: 2, dir, basePort: base, clusterId: "mine" });
    await fakeNodeApi(base + 100, "another-cluster", 1);
    await fakeNodeApi(base + 101, "mine", 1); // answers on node 2's port as node 1
    expect(await cluster.status(1)).toBeUndefined();
    expect(await cluster.status(2)).toBeUndefined();
    const right = await tempDir();
    const same = new LocalCluster({ nodes: 1, dir: right, basePort: base, clusterId: "another-cluster" });
    expect(await same.status(1)).toMatchObject({ id: 1, clusterId: "another-cluster" });
  });
});

describe("raftwal cluster's supervisor and a node that fails at once", () => {
  it("restarts it with a doubling delay, then gives up, printing the node's error line each time", async () => {
    const dir = await tempDir();
    const cluster = new LocalCluster({ nodes: 3, dir, basePort: await findFreeBasePort(3), logs: "file", nodeArgs: ["--tick-ms", "20"] });
    cleanups.push(() => cluster.stop());
    await cluster.start();
    const lines: string[] = [];
    const supervisor = new ClusterSupervisor(cluster, { write: (text: string) => lines.push(...text.trimEnd().split("\n")) }, { restartDelayMs: 200 });
    cleanups.push(() => supervisor.stop());
    supervisor.start();
    const leader = await cluster.waitForLeader();
    const victim = cluster.specs.find((spec) => spec.id !== leader)!;
    await cluster.kill(victim.id, "SIGKILL");
    // Its peer port is taken before the restart: every restart fails at once.
    await listen(net.createServer(), victim.peerPort);
    const deadline = Date.now() + 20_000;
    while (!lines.some((line) => line.includes("not restarting it")) && Date.now() < deadline) await sleep(50);
    const mine = lines.filter((line) => line.startsWith(`node ${victim.id} `)).map((line) => line.replace(/pid \d+/, "pid P"));
    const failure = `raftwal: listen EADDRINUSE: address already in use 127.0.0.1:${victim.peerPort}`;
    expect(mine).toEqual([
      `node ${victim.id} exited (SIGKILL); restarting it in 0.2 s`,
      `node ${victim.id} restarted (pid P)`,
      `node ${victim.id} exited (code 1); restarting it in 0.4 s: ${failure}`,
      `node ${victim.id} restarted (pid P)`,
      `node ${victim.id} exited (code 1); restarting it in 0.8 s: ${failure}`,
      `node ${victim.id} restarted (pid P)`,
      `node ${victim.id} exited (code 1) 3 times in a row soon after starting; not restarting it: ${failure}`,
    ]);
    expect(supervisor.pendingRestarts()).toEqual([]);
    expect(cluster.isRunning(victim.id)).toBe(false);
  });
});

describe("raftwal cluster from start to Ctrl-C", () => {
  it("prints the README tour's lines, preallocates small WAL segments, and on Ctrl-C lets every node save its commit index", async () => {
    const dir = await tempDir();
    const base = await findFreeBasePort(3);
    const run = new ClusterProcess(["--base-port", String(base), "--dir", "data"].map((arg) => (arg === "data" ? join(dir, "data") : arg)));
    await run.waitFor(/^leader: node \d+ \(term \d+\) at /m);
    // The tour's lines, with this run's directory and ports put back to the defaults.
    const printed = run.stdout
      .replaceAll(`${join(dir, "data")}/`, "data/")
      .replace(/127\.0\.0\.1:(\d+)/g, (_, port: string) => `127.0.0.1:${Number(port) - base + 7001}`)
      .trimEnd()
      .split("\n")
      .map(normalise);
    expect(printed).toEqual(readmeTourLines());

    const endpoints = [0, 1, 2].map((k) => `http://127.0.0.1:${base + 100 + k}`);
    const client = new KvClient({ endpoints, operationTimeoutMs: 20_000 });
    cleanups.push(() => client.close());
    for (let i = 0; i < 30; i++) await client.put(`key${i}`, `value${i}`);
    // Every node knows the same commit index before the Ctrl-C.
    let commit = 0;
    for (let attempt = 0; attempt < 200; attempt++) {
      const commits = await Promise.all(endpoints.map(async (endpoint) => Number((await client.status(endpoint)).commitIndex)));
      if (commits.every((c) => c === commits[0]) && commits[0] >= 31) {
        commit = commits[0];
        break;
      }
      await sleep(50);
    }
    expect(commit).toBeGreaterThanOrEqual(31);
    for (const id of [1, 2, 3]) {
      const segments = readdirSync(join(dir, "data", `node-${id}`, "wal")).filter((name) => name.endsWith(".wal"));
      expect(segments.length).toBeGreaterThan(0);
      for (const name of segments) expect(statSync(join(dir, "data", `node-${id}`, "wal", name)).size).toBe(4 * 1024 * 1024);
    }

    run.interrupt();
    expect(await withTimeout(run.exited, 20_000, "stopping")).toBe(0);
    expect(run.stdout).toContain("stopping: each node finishes its requests, saves its commit index and closes its WAL (Ctrl-C again kills them now)\n");
    for (const id of [1, 2, 3]) expect(run.stdout).toContain(`node ${id} stopped\n`);
    expect(run.stdout.endsWith("stopped.\n")).toBe(true);
    for (const id of [1, 2, 3]) {
      const nodeDir = join(dir, "data", `node-${id}`);
      let json = "";
      await runCli(["wal", "inspect", nodeDir, "--json"], { stdout: { write: (text: string) => ((json += text), true) }, stderr: { write: () => true } });
      const inspected = JSON.parse(json) as { hardState: { commit: number } };
      expect(inspected.hardState.commit, `node ${id}'s saved commit index`).toBeGreaterThanOrEqual(commit);
      expect(readFileSync(join(dir, "data", `node-${id}.log`), "utf8")).toMatch(/"msg":"stopped"/);
    }
  });

  it("a second Ctrl-C kills the nodes that have not stopped yet", async () => {
    const dir = await tempDir();
    const run = new ClusterProcess(["--base-port", String(await findFreeBasePort(3)), "--dir", join(dir, "data")]);
    await run.waitFor(/^leader: /m);
    const [first] = run.pids();
    // A paused node cannot stop by itself: only a kill ends it.
    process.kill(first, "SIGSTOP");
    run.interrupt();
    await run.waitFor(/^node 2 stopped\n(.|\n)*^node 3 stopped\n|^node 3 stopped\n(.|\n)*^node 2 stopped\n/m, 20_000);
    expect(run.stdout).not.toContain("node 1 stopped");
    const started = Date.now();
    run.interrupt();
    expect(await withTimeout(run.exited, 10_000, "stopping after a second Ctrl-C")).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.stdout).toContain("killing the nodes now\n");
    expect(run.stdout).toContain("node 1 killed\n");
    expect(run.stdout.endsWith("stopped.\n")).toBe(true);
  });
});
