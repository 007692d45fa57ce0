/**
 * A cluster of separate `raftwal node` processes on one machine (loopback), with the KV
 * service: the supervisor `raftwal cluster` runs, and what end-to-end tests, the cluster
 * benchmark and the torture tool drive (kill -9, restart, pause). Not part of the library's
 * API: it spawns this CLI.
 *
 * Node i (1-based) gets peer port `basePort + i - 1` and API port `basePort + 100 + i - 1`,
 * and its data in `<dir>/node-<i>`. Restarting on the same dir recovers the data.
 *
 * Membership (src/raft/MEMBERSHIP.md): the first start of a cluster whose nodes have no
 * data directory founds it; every later start needs the node's state (an empty directory is
 * refused: the node exits with ExitCode.REFUSED). `joinNode` starts a new node (the next
 * unused id, fresh ports and data directory) that joins as a learner; `promote` and
 * `removeNode` change the membership through the KV API. `specs` lists the nodes this
 * cluster runs or may restart: a removed node leaves it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { KvClient, type MembersAnswer } from "../kv/client.js";
import type { NodeStatus } from "../node/options.js";
import { NODE_HEAP_FLAGS } from "./v8-heap.js";

/**
 * The compiled CLI entry point (dist/src/cli/main.js). From the TypeScript sources (tests
 * run them directly) it is the build's copy, which `npm test` makes first.
 */
export const CLI_ENTRY = import.meta.url.endsWith(".ts")
  ? fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url))
  : fileURLToPath(new URL("./main.js", import.meta.url));

export const API_PORT_OFFSET = 100;

/** `raftwal cluster`'s defaults: peers on 7001.., APIs on 7101.. */
export const CLUSTER_BASE_PORT_DEFAULT = 7001;
/** The API URLs of `raftwal cluster`'s three default nodes: where `raftwal kv` and `raftwal member` go unless told. */
export const CLUSTER_ENDPOINTS_DEFAULT = [0, 1, 2].map((i) => `http://127.0.0.1:${CLUSTER_BASE_PORT_DEFAULT + API_PORT_OFFSET + i}`).join(",");

/** How long a removed node gets to learn of its removal and exit by itself before it is killed. */
const REMOVED_EXIT_TIMEOUT_MS = 15_000;
/** Characters of a node's stderr kept to find its last line. */
const STDERR_TAIL_CHARACTERS = 8192;

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
  /** Flags for the Node.js runtime of every node process (e.g. ["--cpu-prof"] to profile), after NODE_HEAP_FLAGS (v8-heap.ts). */
  runtimeFlags?: string[];
  /**
   * Start each node in its own process group, so that a Ctrl-C on the terminal reaches only
   * this process, which then stops the nodes in order (`raftwal cluster`). Default false:
   * the nodes share this process's group (a test runner's Ctrl-C reaches them too).
   */
  ownProcessGroups?: boolean;
}

export interface LocalNodeSpec {
  id: number;
  peerPort: number;
  apiPort: number;
  dataDir: string;
  apiUrl: string;
}

/** How a node's process ended. */
export interface NodeExit {
  /** The exit code (null when a signal ended it). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last line the node wrote on stderr that is not a JSON log line (its `raftwal: ...` error), if any. */
  lastLine: string | undefined;
}

export class LocalCluster {
  readonly specs: LocalNodeSpec[];
  private readonly processes = new Map<number, ChildProcess>();
  private readonly logFiles = new Map<number, WriteStream>();
  private readonly host: string;
  /** Nodes whose next start founds the cluster (their first, when no node had a data directory). */
  private readonly founding = new Set<number>();
  /** Nodes whose next start joins (their first): the member API URL to ask, or "" to wait for `addLearner`. */
  private readonly joining = new Map<number, string>();
  /** The highest id this cluster ever had: ids are never reused. */
  private highestId: number;
  private readonly exitListeners: Array<(id: number, exit: NodeExit) => void> = [];
  private readonly stderrTails = new Map<number, string>();

  constructor(private readonly options: LocalClusterOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) throw new Error("--nodes must be an integer from 1 to 9");
    this.host = options.host ?? "127.0.0.1";
    this.specs = Array.from({ length: options.nodes }, (_, i) => this.specOf(i + 1));
    this.highestId = options.nodes;
  }

  private specOf(id: number): LocalNodeSpec {
    const peerPort = this.options.basePort + id - 1;
    const apiPort = peerPort + API_PORT_OFFSET;
    return { id, peerPort, apiPort, dataDir: join(this.options.dir, `node-${id}`), apiUrl: `http://${this.host}:${apiPort}` };
  }

  /** The `--peers` value every node gets: id=host:peerPort/host:apiPort, comma-separated. */
  peersFlag(): string {
    return this.specs.map((s) => `${s.id}=${this.host}:${s.peerPort}/${this.host}:${s.apiPort}`).join(",");
  }

  /**
   * Starts every node and waits until each API answers. A cluster whose nodes have no data
   * directory yet is founded (`--initial-cluster-state new`); otherwise every node must find
   * its state, and one whose directory is gone refuses to start (it must not rejoin under its
   * old id: replace it with `raftwal member`). `apiTimeoutMs` (default 20 s): how long a node
   * may take to open its data and serve (a large state takes longer to load).
   */
  async start(options: { apiTimeoutMs?: number } = {}): Promise<void> {
    await this.checkPortsFree();
    if (this.specs.every((spec) => !existsSync(spec.dataDir))) for (const spec of this.specs) this.founding.add(spec.id);
    mkdirSync(this.options.dir, { recursive: true });
    for (const spec of this.specs) this.startNode(spec.id);
    await Promise.all(this.specs.map((spec) => this.waitForApi(spec.id, options.apiTimeoutMs)));
  }

  /**
   * Every node's peer and API port must be free before any node starts: a node that cannot
   * listen exits, and the API of whatever holds its port would answer in its place.
   */
  private async checkPortsFree(): Promise<void> {
    for (const spec of this.specs) {
      for (const [port, what] of [[spec.peerPort, "peer"], [spec.apiPort, "API"]] as const) {
        if (!(await isFree(port, this.host))) {
          throw new Error(`port ${port} (node ${spec.id}'s ${what} port) is in use on ${this.host}: another raftwal cluster? Stop it, or choose other ports with --base-port`);
        }
      }
    }
  }

  startNode(id: number): ChildProcess {
    const spec = this.spec(id);
    if (this.processes.has(id)) throw new Error(`node ${id} is already running`);
    const args = [
      // The heap flags first: a runtime flag given by the caller comes later, and V8 keeps the last.
      ...NODE_HEAP_FLAGS,
      ...(this.options.runtimeFlags ?? []),
      CLI_ENTRY,
      "node",
      "--id",
      String(id),
      "--cluster-id",
      this.clusterId,
      "--dir",
      spec.dataDir,
      ...this.startModeArgs(spec),
      "--log-level",
      this.options.logLevel ?? "info",
      ...(typeof this.options.nodeArgs === "function" ? this.options.nodeArgs(id) : (this.options.nodeArgs ?? [])),
    ];
    const logs = this.options.logs ?? "file";
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", logs === "inherit" ? "inherit" : "pipe", logs === "inherit" ? "inherit" : "pipe"],
      detached: this.options.ownProcessGroups === true,
    });
    this.watch(id, child);
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
    return child;
  }

  /**
   * Only a node's first start in a new cluster founds it (with every founding member's
   * addresses), and only a new node's first start joins; every other start needs the
   * node's state (an empty directory is refused).
   */
  private startModeArgs(spec: LocalNodeSpec): string[] {
    if (this.founding.delete(spec.id)) return ["--initial-cluster-state", "new", "--peers", this.peersFlag()];
    const via = this.joining.get(spec.id);
    if (via === undefined) return ["--initial-cluster-state", "existing"];
    this.joining.delete(spec.id);
    return ["--join", ...(via ? [via] : []), "--listen", `${this.host}:${spec.peerPort}`, "--api", `${this.host}:${spec.apiPort}`];
  }

  /** Keeps the tail of the node's stderr, and tells the exit listeners how it ended. */
  private watch(id: number, child: ChildProcess): void {
    this.stderrTails.set(id, "");
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => this.stderrTails.set(id, ((this.stderrTails.get(id) ?? "") + text).slice(-STDERR_TAIL_CHARACTERS)));
    child.once("exit", (code, signal) => {
      if (this.processes.get(id) === child) this.processes.delete(id);
      const exit = { code, signal, lastLine: lastPlainLine(this.stderrTails.get(id) ?? "") };
      for (const listener of this.exitListeners) listener(id, exit);
    });
  }

  /** Called whenever a node's process ends (killed, crashed, refused to start, removed, stopped). */
  onExit(listener: (id: number, exit: NodeExit) => void): void {
    this.exitListeners.push(listener);
  }

  /**
   * Starts a new node that joins the cluster as a learner: the next unused id (ids are
   * never reused), peer port `basePort + id - 1` and API port 100 above (they must be free:
   * reserve them with findFreeBasePort), a fresh data directory. With `ask` (the default)
   * it asks a running member's API to add it (`raftwal node --join URL`); with `ask: false`
   * it waits for `addLearner`. Resolves with its spec once it is a learner (asked) or its API
   * answers (not asked).
   */
  async joinNode(options: { ask?: boolean } = {}): Promise<LocalNodeSpec> {
    const spec = this.specOf(++this.highestId);
    if (existsSync(spec.dataDir)) throw new Error(`${spec.dataDir} exists: a joining node starts on a fresh data directory`);
    for (const port of [spec.peerPort, spec.apiPort]) {
      if (!(await isFree(port, this.host))) throw new Error(`port ${port} for node ${spec.id} is taken (reserve ports for joining nodes with findFreeBasePort)`);
    }
    const via = options.ask === false ? "" : this.runningSpecs()[0]?.apiUrl;
    if (via === undefined) throw new Error("no running member to ask");
    this.specs.push(spec);
    this.joining.set(spec.id, via);
    this.startNode(spec.id);
    await this.waitForApi(spec.id);
    if (via) await this.waitForMembership(spec.id);
    return spec;
  }

  /** Waits until node `id` is in a configuration (its join request was answered and the leader reached it). */
  private async waitForMembership(id: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.isRunning(id)) throw new Error(`node ${id} exited while joining: ${this.lastLine(id) ?? "see its log"}`);
      const membership = (await this.status(id))?.membership;
      if (membership !== undefined && membership !== "joining") return;
      await delay(50);
    }
    throw new Error(`node ${id} was not added within ${timeoutMs} ms`);
  }

  /** Adds node `id` (started by `joinNode({ ask: false })`) as a learner, through any running member's API. */
  addLearner(id: number): Promise<MembersAnswer> {
    const spec = this.spec(id);
    return this.withClient((client) => client.addLearner({ id, peerAddress: `${this.host}:${spec.peerPort}`, apiAddress: `${this.host}:${spec.apiPort}` }));
  }

  /** Makes learner `id` a voter, through any running member's API (RAFT_ERR_LEARNER_BEHIND until it caught up). */
  promote(id: number): Promise<MembersAnswer> {
    this.spec(id);
    return this.withClient((client) => client.promote(id));
  }

  /**
   * Removes member `id` through the API of a running member, then waits for its process to
   * exit by itself (it applies its removal and stops; killed after a bound) and forgets it:
   * it leaves `specs` and is never restarted. Its data directory stays.
   */
  async removeNode(id: number): Promise<MembersAnswer> {
    this.spec(id);
    const answer = await this.withClient((client) => client.removeMember(id), id);
    const child = this.processes.get(id);
    if (child) {
      const exited = once(child, "exit");
      const timer = setTimeout(() => child.kill("SIGKILL"), REMOVED_EXIT_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.specs.splice(this.specs.findIndex((spec) => spec.id === id), 1);
    return answer;
  }

  /**
   * Kills node `id` and forgets it without asking the cluster, for a node that never became
   * a member (its join failed): it leaves `specs` and is never restarted. Its data directory stays.
   */
  async forget(id: number): Promise<void> {
    this.spec(id);
    await this.kill(id, "SIGKILL");
    this.specs.splice(this.specs.findIndex((spec) => spec.id === id), 1);
  }

  /** A KvClient on the running members' APIs (but `except`), closed after `action`. */
  private async withClient<T>(action: (client: KvClient) => Promise<T>, except?: number): Promise<T> {
    const endpoints = this.runningSpecs().filter((spec) => spec.id !== except).map((spec) => spec.apiUrl);
    if (endpoints.length === 0) throw new Error("no running member to ask");
    const client = new KvClient({ endpoints });
    try {
      return await action(client);
    } finally {
      client.close();
    }
  }

  private runningSpecs(): LocalNodeSpec[] {
    return this.specs.filter((spec) => this.isRunning(spec.id));
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

  /**
   * The node's /status, or undefined if it does not answer, or if what answers on its API
   * port is not this cluster's node `id` (another cluster's node, started on the same ports).
   */
  async status(id: number): Promise<NodeStatusJson | undefined> {
    let status: NodeStatusJson;
    try {
      status = JSON.parse(await httpGet(`${this.spec(id).apiUrl}/status`, 1000)) as NodeStatusJson;
    } catch {
      return undefined;
    }
    return status.clusterId === this.clusterId && status.id === id ? status : undefined;
  }

  /** The cluster id every node is started with (its peers must present the same). */
  get clusterId(): string {
    return this.options.clusterId ?? "local";
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

  /** The last line node `id` wrote on stderr that is not a JSON log line (its `raftwal: ...` error), if any. */
  lastLine(id: number): string | undefined {
    return lastPlainLine(this.stderrTails.get(id) ?? "");
  }

  private async waitForApi(id: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.isRunning(id)) throw new Error(`node ${id} exited while starting: ${this.lastLine(id) ?? "see its log"}`);
      if (await this.status(id)) return;
      await delay(50);
    }
    throw new Error(`node ${id}'s API did not answer within ${timeoutMs} ms`);
  }
}

/** What a node's GET /status answers. */
export type NodeStatusJson = NodeStatus;

/** The last non-empty line of `text` that is not a JSON log line. */
function lastPlainLine(text: string): string | undefined {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("{"))
    .pop();
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
 * P is drawn below the kernel's ephemeral range: a port in that range, free when checked,
 * may be taken a moment later as the local end of any outgoing connection (a test's own
 * client, another node's peer link), and the node that should listen on it exits with
 * EADDRINUSE. Below the range only another listener can take it.
 */
export async function findFreeBasePort(count: number, host = "127.0.0.1"): Promise<number> {
  const low = BASE_PORT_LOW;
  // Room above the base for nodes that join later (ids below 100: torture's membership nemesis).
  const high = Math.min(ephemeralPortLow(), 65_536) - 2 * API_PORT_OFFSET - count;
  if (high <= low) throw new Error(`no room for ports below the ephemeral range (${low}..${high})`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low));
    const ports = [...Array.from({ length: count }, (_, i) => base + i), ...Array.from({ length: count }, (_, i) => base + API_PORT_OFFSET + i)];
    if ((await Promise.all(ports.map((port) => isFree(port, host)))).every(Boolean)) return base;
  }
  throw new Error("could not find free ports");
}

/** The lowest base port `findFreeBasePort` draws (above the well-known and `raftwal cluster`'s default 7001..). */
const BASE_PORT_LOW = 10_000;
/** Linux's default ephemeral range starts here; used where /proc does not say. */
const EPHEMERAL_PORT_LOW_DEFAULT = 32_768;

/** The first port of the kernel's ephemeral (outgoing connection) range. */
function ephemeralPortLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : EPHEMERAL_PORT_LOW_DEFAULT;
  } catch {
    return EPHEMERAL_PORT_LOW_DEFAULT;
  }
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
