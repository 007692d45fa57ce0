/**
 * How the nemeses drive the cluster's node processes: start, kill, restart, find the
 * leader, wait (always bounded), read a node's log since a point. It also watches every
 * process exit: an exit the tool did not cause (a kill, a removal, a torn write it asked
 * for) is a node that stopped by itself; it is recorded with why (its last line), and is a
 * violation unless the scenario expected it.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LocalCluster, NodeExit, NodeStatusJson } from "../cli/local-cluster.js";
import type { RunEvents } from "./events.js";
import { choose } from "./nemesis.js";

/** A restarted node must answer its API within this time (recovery replays the WAL). */
export const RESTART_TIMEOUT_MS = 20_000;
/** How long to look for a leader before a step that needs one picks any running node. */
const LEADER_WAIT_MS = 3_000;
/** How long a disk or membership step waits for the cluster to be whole before it is skipped. */
const HEALTHY_WAIT_MS = 10_000;
/** How long a leadership transfer may take (the target must catch up first). */
const TRANSFER_WAIT_MS = 5_000;
const POLL_MS = 50;
/** Bound on waiting for a node's log lines to reach its log file. */
const LOG_FLUSH_WAIT_MS = 3_000;

/** An exit the tool caused or announced: why, and who waits for it. */
interface ExpectedExit {
  why: string;
  resolve?: (exit: NodeExit) => void;
}

export class NodeControl {
  /** Set when the run stops: sleeps end early, waits give up. */
  stopping = false;
  /** Set at teardown: exits from then on are the tool's own. */
  private closed = false;
  private readonly expectedExits = new Map<number, ExpectedExit>();
  /** Stops a scenario expects (matched against the node's last line). */
  private readonly expectedStops = new Map<number, RegExp>();

  constructor(
    readonly cluster: LocalCluster,
    readonly events: RunEvents,
    /** The run's directory (node logs are `<dir>/node-<id>.log`). */
    private readonly dir: string,
  ) {
    cluster.onExit((id, exit) => this.noticeExit(id, exit));
  }

  /** The nodes the tool runs (the members it knows of), running or not. */
  ids(): number[] {
    return this.cluster.specs.map((spec) => spec.id);
  }

  running(): number[] {
    return this.ids().filter((id) => this.cluster.isRunning(id));
  }

  /** Exits from now on are the tool's teardown, not nodes stopping. */
  close(): void {
    this.closed = true;
  }

  /** SIGKILL (or `signal`) node `id`, as a fault; resolves once it exited. */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.cluster.isRunning(id)) return;
    this.expectedExits.set(id, { why: `killed (${signal})` });
    await this.cluster.kill(id, signal);
  }

  /** The next exit of node `id` is expected (a removal, a tear it was asked for); resolves with how it ended. */
  nextExit(id: number, why: string): Promise<NodeExit> {
    return new Promise((resolve) => this.expectedExits.set(id, { why, resolve }));
  }

  /** Cancels `nextExit` (the exit did not come): a later exit is a node stopping by itself again. */
  forgetExit(id: number): void {
    this.expectedExits.delete(id);
  }

  /** Node `id` may stop by itself for the reason `reason` matches (not a violation then). */
  expectStop(id: number, reason: RegExp): void {
    this.expectedStops.set(id, reason);
  }

  forgetStop(id: number): void {
    this.expectedStops.delete(id);
  }

  private noticeExit(id: number, exit: NodeExit): void {
    if (this.closed) return;
    const expected = this.expectedExits.get(id);
    if (expected) {
      this.expectedExits.delete(id);
      expected.resolve?.(exit);
      return;
    }
    const detail = exit.lastLine ?? (exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`);
    const allowed = this.expectedStops.get(id);
    this.expectedStops.delete(id);
    const isExpected = allowed !== undefined && allowed.test(detail);
    this.events.stopped({ id, reason: stopReason(detail), detail, expected: isExpected });
    if (!isExpected) this.events.violation(`n${id} stopped by itself (${exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`}): ${detail.slice(0, 600)}`);
  }

  /** Starts node `id`; resolves when its API answers, or with its exit code if it exits first. */
  async start(id: number): Promise<{ ok: true } | { ok: false; exitCode: number | null }> {
    const { cluster } = this;
    if (cluster.isRunning(id)) return { ok: true };
    const child = cluster.startNode(id);
    let exit: { code: number | null } | undefined;
    child.once("exit", (code) => (exit = { code }));
    const deadline = Date.now() + RESTART_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exit) return { ok: false, exitCode: exit.code };
      if (await cluster.status(id)) return { ok: true };
      await delay(POLL_MS);
    }
    await this.kill(id);
    return { ok: false, exitCode: null };
  }

  /**
   * Starts a stopped node and waits for its API; counts a recovery and the torn tails it
   * cut. A node that exits instead was recorded as stopping by itself (noticeExit); one that
   * does not answer in time is killed and is a violation.
   */
  async restart(id: number, why: string): Promise<boolean> {
    const logFrom = this.logSize(id);
    const started = await this.start(id);
    const log = await this.logSinceEventually(id, logFrom, started.ok ? /"serving"/ : /raftwal: /);
    this.events.tornTailsRepaired += (log.match(/"tornTail":\{/g) ?? []).length;
    if (started.ok) {
      this.events.recoveries++;
      return true;
    }
    if (started.exitCode === null) this.events.violation(`n${id} did not answer within ${RESTART_TIMEOUT_MS} ms after ${why}; killed: ${lastLines(log, 3)}`);
    return false;
  }

  status(id: number): Promise<NodeStatusJson | undefined> {
    return this.cluster.status(id);
  }

  /** The leader the running nodes agree on now, if any (one quick look). */
  async leader(): Promise<number | undefined> {
    const statuses = await Promise.all(this.running().map((id) => this.cluster.status(id)));
    const leaders = statuses.filter((status) => status?.role === "leader").map((status) => status!.id);
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  /** The leader, waited for a moment; else a running node chosen with `picks`. */
  async leaderOrAny(picks: readonly number[]): Promise<number> {
    let leader: number | undefined;
    await this.waitUntil(LEADER_WAIT_MS, async () => (leader = await this.leader()) !== undefined);
    return leader ?? choose(this.running(), 1, picks)[0] ?? this.ids()[0];
  }

  /** Running nodes other than the leader (all running nodes when no leader is known). */
  async followers(picks: readonly number[]): Promise<number[]> {
    const leader = await this.leaderOrAny(picks);
    const others = this.running().filter((id) => id !== leader);
    return others.length > 0 ? others : this.running();
  }

  /**
   * Waits (bounded) until the cluster is whole: every member runs and answers, none is
   * repairing, and they agree on a leader. Undefined when it is; else what is wrong. Disk
   * and membership steps start only then: damage on top of an unfinished repair could take
   * a majority's copies of committed entries, which no repair can bring back.
   */
  async unhealthy(timeoutMs = HEALTHY_WAIT_MS): Promise<string | undefined> {
    let problem: string | undefined;
    await this.waitUntil(timeoutMs, async () => {
      const statuses = await Promise.all(this.ids().map(async (id) => ({ id, status: this.cluster.isRunning(id) ? await this.status(id) : undefined })));
      const down = statuses.filter((entry) => entry.status === undefined).map((entry) => `n${entry.id}`);
      const repairing = statuses.filter((entry) => entry.status?.repairing).map((entry) => `n${entry.id}`);
      const leaders = new Set(statuses.map((entry) => entry.status?.leader ?? 0));
      if (down.length > 0) problem = `${down.join(",")} down`;
      else if (repairing.length > 0) problem = `${repairing.join(",")} repairing`;
      else if (leaders.size !== 1 || leaders.has(0)) problem = "no agreed leader";
      else problem = undefined;
      return problem === undefined;
    });
    return problem;
  }

  /** Makes node `to` the leader (`POST /admin/transfer` on the leader, repeated); true once it leads. */
  async makeLeader(to: number, timeoutMs = TRANSFER_WAIT_MS): Promise<boolean> {
    return this.waitUntil(timeoutMs, async () => {
      const leader = await this.leader();
      if (leader === to) return true;
      if (leader === undefined) return false;
      try {
        await fetch(`${this.cluster.spec(leader).apiUrl}/admin/transfer?to=${to}`, { method: "POST", signal: AbortSignal.timeout(2000) });
      } catch {
        // The leader may be gone; the next look finds the new one.
      }
      return false;
    });
  }

  /** Polls `condition` until it holds (true) or `timeoutMs` passes (false); gives up when the run stops. */
  async waitUntil(timeoutMs: number, condition: () => Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.stopping) {
      if (await condition()) return true;
      await delay(POLL_MS * 4);
    }
    return condition();
  }

  /** Sleeps `ms`, cut short when the run stops. */
  async sleep(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopping && Date.now() < until) await delay(Math.min(POLL_MS * 2, until - Date.now()));
  }

  logPath(id: number): string {
    return join(this.dir, `node-${id}.log`);
  }

  logSize(id: number): number {
    try {
      return statSync(this.logPath(id)).size;
    } catch {
      return 0;
    }
  }

  /** The log since `from` once it shows `expected` (the pipe to the file lags the process), or after LOG_FLUSH_WAIT_MS. */
  async logSinceEventually(id: number, from: number, expected: RegExp): Promise<string> {
    let text = "";
    const deadline = Date.now() + LOG_FLUSH_WAIT_MS;
    while (!expected.test((text = this.logSince(id, from))) && Date.now() < deadline) await delay(POLL_MS);
    return text;
  }

  logSince(id: number, from: number): string {
    try {
      return readFileSync(this.logPath(id)).subarray(from).toString();
    } catch {
      return "";
    }
  }
}

/** Why a node stopped, from its last line. */
export function stopReason(lastLine: string): string {
  if (/quorum of voters is recovering|RAFT_ERR_UNREPAIRABLE/.test(lastLine)) return "RAFT_ERR_UNREPAIRABLE";
  if (/removed from the cluster/.test(lastLine)) return "removed";
  if (/corrupt|checksum/i.test(lastLine)) return "storage damage found while running";
  if (/no peer address in the configuration/.test(lastLine)) return "lost its configuration (no address to listen on)";
  if (/^signal /.test(lastLine)) return lastLine;
  return "other";
}

export function lastLines(text: string, count: number): string {
  return text.trim().split("\n").slice(-count).join(" / ").slice(0, 600);
}

/** Waits `ms` milliseconds; a negative `ms` (a deadline already passed) waits as 0 does. */
export function delay(ms: number): Promise<void> {
  return sleep(Math.max(0, ms));
}
