/**
 * The disk nemesis: storage damage that nodes must repair from their peers
 * (src/raft/REPAIR.md; onStorageCorruption "repair", the default).
 *
 *   disk-wal, disk-hardstate, disk-snapshot  a follower is killed, one bit of that part
 *                  flipped (disk-damage.ts), and the node restarted;
 *   disk-leader    the same on the leader (a part drawn from the seed);
 *   disk-majority  the same on a majority of the voters in turn, each repaired before the
 *                  next is damaged;
 *   disk-live      a bit flipped in a sealed segment of the running leader, past the last
 *                  index of a follower kept down meanwhile; the follower restarts, the
 *                  leader reads the damaged record to serve it and must stop; restarted by
 *                  the tool, it repairs itself.
 *
 * After a restart on damaged storage the node must report the damage at start (a
 * "storage damage: ..." line), show `repairing` in /status until done, log "storage
 * repaired from peers", remove its REPAIRING mark, and never come back below its durable
 * term. A damaged snapshot skipped for an older valid one (a warning naming it) loses
 * nothing and needs no repair.
 */
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { seededRandom } from "../rng.js";
import { damage, durableHardState, type Damage, type DamageTarget } from "./disk-damage.js";
import { countOne } from "./events.js";
import { choose, type FaultStep, type NEMESIS_GROUPS } from "./nemesis.js";
import { lastLines, type NodeControl } from "./node-control.js";

/** A restarted damaged node must be whole again within this time. */
export const REPAIR_TIMEOUT_MS = 30_000;
/** How long disk-live waits for the leader's log to seal a segment past the lagging follower. */
const LIVE_LAG_WAIT_MS = 20_000;
/** How long the leader gets to read the damaged record once the follower is back. */
const LIVE_STOP_WAIT_MS = 10_000;
/** How long to wait for a leader between two damaged nodes of disk-majority. */
const LEADER_WAIT_MS = 10_000;
const TARGETS: readonly DamageTarget[] = ["wal", "hardstate", "snapshot"];

export type DiskFaultKind = (typeof NEMESIS_GROUPS)["disk"][number];

export interface DiskNemesisOptions {
  control: NodeControl;
  /** The voters now (the membership nemesis changes them). */
  voters: () => number[];
  /** Nodes that snapshot rarely: their logs span several sealed segments. */
  longLog: (id: number) => boolean;
}

/** What one damaged node came to. */
interface Outcome {
  repaired: boolean;
  text: string;
}

export class DiskNemesis {
  constructor(private readonly options: DiskNemesisOptions) {}

  async run(step: FaultStep & { kind: DiskFaultKind }): Promise<void> {
    const { control } = this.options;
    const random = seededRandom(step.seed);
    const problem = await control.unhealthy();
    if (problem) {
      control.events.stepsSkipped++;
      control.events.note(`${step.kind} #${step.index} skipped: the cluster is not whole (${problem})`);
      return;
    }
    switch (step.kind) {
      case "disk-wal":
      case "disk-hardstate":
      case "disk-snapshot": {
        const [id] = choose(await control.followers(step.picks), 1, step.picks);
        const target = step.kind === "disk-wal" ? "wal" : step.kind === "disk-hardstate" ? "hardstate" : "snapshot";
        return this.single(step, id, target, random);
      }
      case "disk-leader":
        return this.single(step, await control.leaderOrAny(step.picks), TARGETS[Math.floor(random() * TARGETS.length)], random);
      case "disk-majority":
        return this.majority(step, random);
      case "disk-live":
        return this.live(step, random);
    }
  }

  private async single(step: FaultStep, id: number | undefined, target: DamageTarget, random: () => number): Promise<void> {
    if (id === undefined) return;
    const record = this.options.control.events.begin(step.index, step.kind, [id]);
    const outcome = await this.damageStopped(id, target, random);
    this.options.control.events.end(record, outcome.text);
  }

  /** A majority of the voters, one at a time: each repaired (and a leader back) before the next. */
  private async majority(step: FaultStep, random: () => number): Promise<void> {
    const { control } = this.options;
    const voters = this.options.voters();
    const targets = choose(voters.filter((id) => control.cluster.isRunning(id)), Math.floor(voters.length / 2) + 1, step.picks);
    const record = control.events.begin(step.index, step.kind, targets);
    const outcomes: string[] = [];
    for (const id of targets) {
      if (control.stopping) break;
      const outcome = await this.damageStopped(id, TARGETS[Math.floor(random() * TARGETS.length)], random);
      outcomes.push(`n${id}: ${outcome.text}`);
      // Not whole again: damaging another voter could leave no majority holding every committed entry.
      if (!outcome.repaired) break;
      await control.waitUntil(LEADER_WAIT_MS, async () => (await control.leader()) !== undefined);
    }
    control.events.end(record, outcomes.join("; "));
  }

  /** Kill, damage `target` (another part when the node has none), restart, and watch the repair. */
  private async damageStopped(id: number, target: DamageTarget, random: () => number): Promise<Outcome> {
    const { control } = this.options;
    await control.kill(id);
    const dataDir = control.cluster.spec(id).dataDir;
    const durable = await durableHardState(dataDir).catch(() => undefined);
    const damaged = await this.damageSomething(id, target, random);
    if (!damaged) {
      const back = await control.restart(id, "a disk fault with nothing to damage");
      return { repaired: back, text: "nothing to damage (a fresh node), restarted" };
    }
    return this.restartAndRepair(id, damaged, durable);
  }

  private async damageSomething(id: number, wanted: DamageTarget, random: () => number): Promise<Damage | undefined> {
    const { control } = this.options;
    for (const target of [wanted, ...TARGETS.filter((other) => other !== wanted)]) {
      const damaged = await damage(control.cluster.spec(id).dataDir, target, random, { nodeId: id });
      if (!damaged) continue;
      if (target !== wanted) control.events.note(`n${id} has no ${wanted} to damage; damaged its ${damaged.kind} instead`);
      this.injected(id, damaged, damaged.kind);
      return damaged;
    }
    return undefined;
  }

  private injected(id: number, damaged: Damage, kind: string): void {
    countOne(this.options.control.events.damageInjected, kind);
    this.options.control.events.note(`n${id}: flipped ${damaged.describe}`);
  }

  /** Restarts a damaged node: the damage must be reported at start and repaired from the peers. */
  private async restartAndRepair(id: number, damaged: Damage, durable: { term: number } | undefined): Promise<Outcome> {
    const { control } = this.options;
    const { events } = control;
    const logFrom = control.logSize(id);
    if (!(await control.restart(id, `damage to its ${damaged.kind}`))) return { repaired: false, text: "did not come back" };
    const startLog = await control.logSinceEventually(id, logFrom, /"serving"/);
    if (!startLog.includes("storage damage: ")) {
      if (damaged.target === "snapshot" && startLog.includes(`${basename(damaged.path)} is corrupt and was skipped`)) {
        events.damagedSnapshotsSkipped++;
        return { repaired: true, text: "the damaged snapshot was skipped for an older valid one, nothing lost" };
      }
      events.violation(`n${id} started on damaged storage (${damaged.describe}) without reporting it: ${lastLines(startLog, 3)}`);
      return { repaired: false, text: "damage not reported" };
    }
    events.damageDetectedAtStart++;
    const repair = await this.awaitRepair(id, logFrom, damaged);
    if (!repair) return { repaired: false, text: "damage reported, not repaired" };
    const status = await control.status(id);
    if (durable && status && status.term < durable.term) {
      events.violation(`n${id} came back with term ${status.term}, below its durable term ${durable.term}, after damage to its ${damaged.describe}`);
    }
    return { repaired: true, text: `damage reported at start, repaired from peers in ${repair.seconds} s${repair.sawRepairing ? "" : " (done before /status was read)"}` };
  }

  /**
   * Waits (REPAIR_TIMEOUT_MS) until the node logged "storage repaired from peers", its
   * /status no longer shows `repairing` and its REPAIRING mark is gone. A node that stops
   * meanwhile was recorded by NodeControl.
   */
  private async awaitRepair(id: number, logFrom: number, damaged: Damage): Promise<{ seconds: number; sawRepairing: boolean } | undefined> {
    const { control } = this.options;
    const marker = join(control.cluster.spec(id).dataDir, "REPAIRING");
    let sawRepairing = false;
    let repairing: unknown;
    let seconds: number | undefined;
    const done = await control.waitUntil(REPAIR_TIMEOUT_MS, async () => {
      if (!control.cluster.isRunning(id)) return true;
      const status = await control.status(id);
      repairing = status?.repairing;
      if (repairing) sawRepairing = true;
      seconds = repairSeconds(control.logSince(id, logFrom));
      return seconds !== undefined && status !== undefined && !repairing && !existsSync(marker);
    });
    if (!control.cluster.isRunning(id)) return undefined;
    if (!done || seconds === undefined) {
      const state = [seconds === undefined ? "no \"storage repaired from peers\" line" : "logged repaired", repairing ? `status repairing ${JSON.stringify(repairing)}` : "status whole", existsSync(marker) ? "REPAIRING still there" : "no REPAIRING mark"];
      control.events.violation(`n${id} was not repaired within ${REPAIR_TIMEOUT_MS / 1000} s of a restart on ${damaged.describe}: ${state.join(", ")}`);
      return undefined;
    }
    control.events.repairs.push({ id, seconds });
    return { seconds, sawRepairing };
  }

  /**
   * disk-live: the victim (a voter that keeps a long log, made the leader) gets a bit flipped
   * in a sealed segment while it runs, in entries a follower kept down meanwhile lacks; the
   * follower restarts, the leader reads the damaged record to send it, and must stop.
   */
  private async live(step: FaultStep, random: () => number): Promise<void> {
    const { control } = this.options;
    const voters = this.options.voters().filter((id) => control.cluster.isRunning(id));
    const longLog = voters.filter((id) => this.options.longLog(id));
    const [victim] = choose(longLog.length > 0 ? longLog : voters, 1, step.picks);
    const [follower] = choose(control.running().filter((id) => id !== victim), 1, step.picks.slice(1));
    if (victim === undefined || follower === undefined) return;
    const record = control.events.begin(step.index, step.kind, [victim, follower]);
    control.events.end(record, await this.liveOn(victim, follower, random));
  }

  private async liveOn(victim: number, follower: number, random: () => number): Promise<string> {
    const { control } = this.options;
    const { cluster, events } = control;
    if (!(await control.makeLeader(victim))) return `not exercised: n${victim} could not be made the leader`;
    const lagFrom = (await control.status(follower))?.lastIndex ?? 0;
    await control.kill(follower);
    let damaged: Damage | undefined;
    let gaveUp = "";
    await control.waitUntil(LIVE_LAG_WAIT_MS, async () => {
      const status = await control.status(victim);
      if (status?.role !== "leader") gaveUp = "it lost the lead";
      else if (status.snapshotIndex >= lagFrom) gaveUp = "it compacted past the follower's last index: it would send a snapshot";
      else damaged = await damage(cluster.spec(victim).dataDir, "wal", random, { nodeId: victim, sealedOnly: true, indexAbove: lagFrom });
      return gaveUp !== "" || damaged !== undefined;
    });
    if (!damaged) {
      await control.restart(follower, "disk-live");
      return `not exercised: n${victim} sealed no segment past n${follower}'s last index ${lagFrom} in time${gaveUp ? ` (${gaveUp})` : ""}`;
    }
    this.injected(victim, damaged, "WAL sealed segment of a running leader");
    events.note(`n${victim} runs and leads; n${follower} lags from index ${lagFrom}`);
    control.expectStop(victim, /corrupt|checksum/i);
    await control.restart(follower, "disk-live");
    const stopped = await control.waitUntil(LIVE_STOP_WAIT_MS, async () => !cluster.isRunning(victim));
    const stop = events.stops.filter((one) => one.id === victim).pop();
    let how: string;
    if (stopped && stop?.expected) {
      events.damageDetectedWhileRunning++;
      how = `n${victim} stopped reading the damaged record (${stop.detail.slice(0, 160)})`;
    } else if (stopped) {
      how = `n${victim} stopped for another reason`;
    } else {
      control.forgetStop(victim);
      await control.kill(victim);
      how = `n${victim} did not read the damaged record within ${LIVE_STOP_WAIT_MS / 1000} s; killed`;
    }
    if (!existsSync(damaged.path)) {
      await control.restart(victim, "disk-live");
      return `${how}; the damaged segment was compacted away meanwhile, restarted`;
    }
    const durable = await durableHardState(cluster.spec(victim).dataDir).catch(() => undefined);
    return `${how}; ${(await this.restartAndRepair(victim, damaged, durable)).text}`;
  }
}

/** The `seconds` of the node's "storage repaired from peers" line in `log`, if there is one. */
export function repairSeconds(log: string): number | undefined {
  const line = log.split("\n").find((text) => text.includes('"msg":"storage repaired from peers"'));
  if (!line) return undefined;
  try {
    const seconds = (JSON.parse(line) as { seconds?: unknown }).seconds;
    return typeof seconds === "number" ? seconds : 0;
  } catch {
    return 0;
  }
}
