/**
 * A cluster of separate `raftwal node` processes on one machine (loopback), with the KV
 * service: the supervisor `raftwal cluster` runs, and what end-to-end tests, the cluster
 * benchmark and the torture tool drive (kill -9, restart, pause). Not part of the library's
 * API: it spawns this CLI.
 *
 * Node i (1-based) gets peer port `basePort + i - 1` and API port `basePort + 100 + i - 1`,
 * and its data in `<dir>/node-<i>`. Restarting on the same dir recovers the data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeStatus } from "../node/options.js";

/**
 * The compiled CLI entry point (dist/src/cli/main.js). From the TypeScript sources (tests
 * run them directly) it is the build's copy, which `npm test` makes first.
 */
export const CLI_ENTRY = import.meta.url.endsWith(".ts")
  ? fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url))
  : fileURLToPath(new URL("./main.js", import.meta.url));

export const API_PORT_OFFSET = 100;

export interface LocalClusterOptions {
  nodes: number;
  dir: string;
  basePort: number;
  host?: string;
  clusterId?: string;
  /** Extra `raftwal node` flags for every node (e.g. ["--snapshot-every", "100"]), or per node. */
  nodeArgs?: string[] | ((id: number) => string[]);
  /** Where each node's log lines go: "inherit" (this process's stderr), "file" (<dir>/node-<i>.log) or "ignore". */
  logs?: "inherit" | "file" | "ignore";
  logLevel?: string;
  /** Flags for the Node.js runtime of every node process (e.g. ["--cpu-prof"] to profile). */
  runtimeFlags?: string[];
}

export interface LocalNodeSpec {
  id: number;
  peerPort: number;
  apiPort: number;
  dataDir: string;
  apiUrl: string;
}

export class LocalCluster {
  readonly specs: LocalNodeSpec[];
  private readonly processes = new Map<number, ChildProcess>();
  private readonly logFiles = new Map<number, WriteStream>();
  private readonly host: string;
  /** Nodes whose next start founds the cluster (their first, when no node had a data directory). */
  private readonly founding = new Set<number>();

  constructor(private readonly options: LocalClusterOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) throw new Error("--nodes must be an integer from 1 to 9");
    this.host = options.host ?? "127.0.0.1";
    this.specs = Array.from({ length: options.nodes }, (_, i) => ({
      id: i + 1,
      peerPort: options.basePort + i,
      apiPort: options.basePort + API_PORT_OFFSET + i,
      dataDir: join(options.dir, `node-${i + 1}`),
      apiUrl: `http://${this.host}:${options.basePort + API_PORT_OFFSET + i}`,
    }));
  }

  /** The `--peers` value every node gets: id=host:peerPort/host:apiPort, comma-separated. */
  peersFlag(): string {
    return this.specs.map((s) => `${s.id}=${this.host}:${s.peerPort}/${this.host}:${s.apiPort}`).join(",");
  }

  /**
   * Starts every node and waits until each API answers. A cluster whose nodes have no data
   * directory yet is founded (`--initial-cluster-state new`); otherwise every node must find
   * its state, and one whose directory is gone refuses to start (it must not rejoin under its
   * old id: replace it with `raftwal member`).
   */
  async start(): Promise<void> {
    if (this.specs.every((spec) => !existsSync(spec.dataDir))) for (const spec of this.specs) this.founding.add(spec.id);
    mkdirSync(this.options.dir, { recursive: true });
    for (const spec of this.specs) this.startNode(spec.id);
    await Promise.all(this.specs.map((spec) => this.waitForApi(spec.id)));
  }

  startNode(id: number): ChildProcess {
    const spec = this.spec(id);
    if (this.processes.has(id)) throw new Error(`node ${id} is already running`);
    const args = [
      ...(this.options.runtimeFlags ?? []),
      CLI_ENTRY,
      "node",
      "--id",
      String(id),
      "--cluster-id",
      this.options.clusterId ?? "local",
      "--dir",
      spec.dataDir,
      "--peers",
      this.peersFlag(),
      // Only a node's first start in a new cluster founds it; every later start needs its state.
      "--initial-cluster-state",
      this.founding.delete(id) ? "new" : "existing",
      "--log-level",
      this.options.logLevel ?? "info",
      ...(typeof this.options.nodeArgs === "function" ? this.options.nodeArgs(id) : (this.options.nodeArgs ?? [])),
    ];
    const logs = this.options.logs ?? "file";
    const child = spawn(process.execPath, args, { stdio: ["ignore", logs === "inherit" ? "inherit" : "pipe", logs === "inherit" ? "inherit" : "pipe"] });
    if (logs === "file") {
      let file = this.logFiles.get(id);
      if (!file) {
        file = createWriteStream(join(this.options.dir, `node-${id}.log`), { flags: "a" });
        this.logFiles.set(id, file);
      }
      child.stdout?.pipe(file, { end: false });
      child.stderr?.pipe(file, { end: false });
    } else if (logs === "ignore") {
      child.stdout?.resume();
      child.stderr?.resume();
    }
    this.processes.set(id, child);
    child.once("exit", () => {
      if (this.processes.get(id) === child) this.processes.delete(id);
    });
    return child;
  }

  /** Sends `signal` to node `id` and waits for it to exit (SIGKILL is kill -9: no cleanup at all). */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.processes.get(id);
    if (!child) return;
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, "exit").then(() => undefined);
    child.kill(signal);
    await exited;
  }

  /** Pauses (SIGSTOP) or resumes (SIGCONT) node `id`. */
  signal(id: number, signal: NodeJS.Signals): void {
    this.processes.get(id)?.kill(signal);
  }

  async restart(id: number): Promise<void> {
    await this.kill(id, "SIGKILL");
    this.startNode(id);
    await this.waitForApi(id);
  }

  /** The operating-system process id of node `id`, if it runs. */
  pid(id: number): number | undefined {
    return this.processes.get(id)?.pid;
  }

  isRunning(id: number): boolean {
    return this.processes.has(id);
  }

  /** Stops every node gracefully (SIGTERM), killing any that does not exit within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    await Promise.all(
      [...this.processes.entries()].map(async ([id, child]) => {
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
        this.processes.delete(id);
      }),
    );
    for (const file of this.logFiles.values()) file.end();
    this.logFiles.clear();
  }

  /** The node's /status, or undefined if it does not answer. */
  async status(id: number): Promise<NodeStatusJson | undefined> {
    try {
      const body = await httpGet(`${this.spec(id).apiUrl}/status`, 1000);
      return JSON.parse(body) as NodeStatusJson;
    } catch {
      return undefined;
    }
  }

  /** Waits until the running nodes agree on one leader; resolves with its id. */
  async waitForLeader(timeoutMs = 15_000, exclude: number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(this.specs.filter((s) => this.isRunning(s.id)).map((s) => this.status(s.id)));
      const leaders = statuses.filter((s): s is NodeStatusJson => s?.role === "leader" && !exclude.includes(s.id));
      if (leaders.length === 1) {
        const leader = leaders[0];
        const agreed = statuses.filter((s) => s?.leader === leader.id).length;
        if (agreed * 2 > this.specs.length) return leader.id;
      }
      await delay(50);
    }
    throw new Error(`no leader elected within ${timeoutMs} ms`);
  }

  spec(id: number): LocalNodeSpec {
    const spec = this.specs.find((s) => s.id === id);
    if (!spec) throw new Error(`no node ${id} in this cluster`);
    return spec;
  }

  private async waitForApi(id: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.isRunning(id)) throw new Error(`node ${id} exited while starting (see its log)`);
      if (await this.status(id)) return;
      await delay(50);
    }
    throw new Error(`node ${id}'s API did not answer within ${timeoutMs} ms`);
  }
}

/** What a node's GET /status answers. */
export type NodeStatusJson = NodeStatus;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function httpGet(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => (response.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", reject);
  });
}

/**
 * Finds a base port P such that P..P+count-1 and P+100..P+100+count-1 are all free on
 * `host` right now (tests and benchmarks use it; there is a small race until they bind).
 */
export async function findFreeBasePort(count: number, host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [...Array.from({ length: count }, (_, i) => base + i), ...Array.from({ length: count }, (_, i) => base + API_PORT_OFFSET + i)];
    if ((await Promise.all(ports.map((port) => isFree(port, host)))).every(Boolean)) return base;
  }
  throw new Error("could not find free ports");
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
