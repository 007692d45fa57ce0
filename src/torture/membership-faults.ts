/**
 * The membership nemesis: runs a step's changes (membership-plan.ts) on the real cluster
 * through the KV API's /members routes (LocalCluster.joinNode, promote, removeNode):
 *   - add: a new node (a new id, new ports, a fresh data directory, the same fault flags)
 *     starts with `--join URL` and becomes a learner;
 *   - promote: a learner becomes a voter once it has caught up (409 LEARNER_BEHIND is
 *     asked again, bounded);
 *   - remove: a voter, a learner or the leader; a running removed node must exit by itself
 *     with code 0 (recorded for the checks);
 *   - replace: the node is killed, its data directory wiped, it is removed, and a new node
 *     joins in its place (promoted if it was a voter).
 * The clients' endpoints follow: a new node's API is added once it is a member, a removed
 * node's is dropped before its removal. The members asked for are tracked for the final
 * check; a request that fails (refused, timed out) is noted and the tracker takes the
 * cluster's own view once its configuration is committed.
 */
import { rmSync } from "node:fs";
import { KvClient, type MembersAnswer } from "../kv/client.js";
import { countOne } from "./events.js";
import { applyChange, membershipLimits, planMembershipStep, type MemberAction, type Members, type MembershipFaultKind } from "./membership-plan.js";
import type { FaultStep } from "./nemesis.js";
import { delay, type NodeControl } from "./node-control.js";

/** How long a learner gets to catch up before its promotion is given up. */
const PROMOTE_WAIT_MS = 20_000;
/** How long the cluster gets to commit (and leave a joint) configuration after a failed request. */
const SETTLE_WAIT_MS = 10_000;
/** Ports are basePort + id - 1 and 100 above: ids stay well below 100 so the two ranges never meet. */
const NODE_ID_MAX = 95;
/** Tries of a join whose ports were taken (each try takes the next id). */
const JOIN_TRIES_MAX = 3;

export interface MembershipNemesisOptions {
  control: NodeControl;
  /** Nodes the cluster was founded with (every one a voter). */
  nodes: number;
  /** The clients' endpoints follow the members. */
  setEndpoints: (apiUrls: string[]) => void;
}

export class MembershipNemesis {
  /** The members asked for so far (the final configuration must be this). */
  members: Members;
  private readonly limits;
  /** The highest node id started so far (ids are never reused). */
  private highestId: number;

  constructor(private readonly options: MembershipNemesisOptions) {
    this.members = { voters: options.control.ids(), learners: [] };
    this.limits = membershipLimits(options.nodes);
    this.highestId = options.nodes;
  }

  async run(step: FaultStep & { kind: MembershipFaultKind }): Promise<void> {
    const { control } = this.options;
    const problem = await control.unhealthy();
    if (problem) {
      control.events.stepsSkipped++;
      control.events.note(`${step.kind} #${step.index} skipped: the cluster is not whole (${problem})`);
      return;
    }
    const leader = await control.leaderOrAny(step.picks);
    const actions = planMembershipStep(step.kind, this.members, leader, step.picks, this.limits);
    const targets = actions.flatMap((action) => ("id" in action && typeof action.id === "number" ? [action.id] : []));
    const record = control.events.begin(step.index, step.kind, targets);
    const done: string[] = [];
    let newId: number | undefined;
    for (const action of actions) {
      if (control.stopping && done.length === 0) break;
      try {
        newId = await this.perform(action, leader, newId);
        done.push(describeAction(action, newId));
      } catch (error) {
        control.events.membershipRequestsFailed++;
        control.events.note(`${step.kind}: ${describeAction(action, newId)} failed: ${(error as Error).message}`);
        await this.settle();
        done.push(`${describeAction(action, newId)} FAILED`);
        break;
      }
    }
    control.events.end(record, `${done.join(", ") || "nothing to do"}; now ${describeMembers(this.members)}`);
  }

  /** One change; returns the id of the node it started, if any (else the one given). */
  private async perform(action: MemberAction, leader: number | undefined, newId: number | undefined): Promise<number | undefined> {
    const { events } = this.options.control;
    switch (action.kind) {
      case "add": {
        const id = await this.join();
        this.members = applyChange(this.members, action, id);
        countOne(events.membershipChanges, "add learner");
        return id;
      }
      case "promote": {
        const id = action.id === "new" ? newId! : action.id;
        await this.promote(id);
        this.members = applyChange(this.members, action, newId);
        countOne(events.membershipChanges, "promote");
        return newId;
      }
      case "remove":
        await this.remove(action.id, leader);
        this.members = applyChange(this.members, action);
        return newId;
      case "replace":
        return this.replace(action);
    }
  }

  /** A new node joins as a learner (`--join URL`); its API joins the clients' endpoints. */
  private async join(): Promise<number> {
    const { cluster } = this.options.control;
    for (let attempt = 1; ; attempt++) {
      // An attempt whose ports were taken used up an id too.
      if (this.highestId + attempt > NODE_ID_MAX) throw new Error(`no node id left below ${NODE_ID_MAX + 1}`);
      try {
        const spec = await cluster.joinNode();
        this.highestId = spec.id;
        this.updateEndpoints();
        return spec.id;
      } catch (error) {
        const message = (error as Error).message;
        if (/port \d+ for node \d+ is taken/.test(message) && attempt < JOIN_TRIES_MAX) continue;
        throw error;
      }
    }
  }

  /** Promotes a learner once it has caught up (RAFT_ERR_LEARNER_BEHIND is asked again, bounded). */
  private async promote(id: number): Promise<MembersAnswer> {
    const deadline = Date.now() + PROMOTE_WAIT_MS;
    for (;;) {
      try {
        return await this.options.control.cluster.promote(id);
      } catch (error) {
        if ((error as { code?: string }).code !== "RAFT_ERR_LEARNER_BEHIND" || Date.now() > deadline) throw error;
        await delay(200);
      }
    }
  }

  /** Removes a member; a running one must then exit by itself with code 0. */
  private async remove(id: number, leader: number | undefined): Promise<void> {
    const { control } = this.options;
    const { cluster, events } = control;
    const wasVoter = this.members.voters.includes(id);
    const running = cluster.isRunning(id);
    const exited = running ? control.nextExit(id, "removed") : undefined;
    this.updateEndpoints(id);
    await cluster.removeNode(id);
    countOne(events.membershipChanges, id === leader ? "remove leader" : wasVoter ? "remove voter" : "remove learner");
    if (exited) {
      const exit = await exited;
      const byItself = exit.code === 0 && exit.signal === null;
      const detail = exit.signal ? `killed (${exit.signal}) after not exiting by itself` : `exit code ${exit.code}${exit.lastLine ? `: ${exit.lastLine}` : ""}`;
      events.removals.push({ id, byItself, detail });
      if (!byItself) events.violation(`removed node n${id} did not exit by itself with code 0: ${detail}`);
    }
  }

  /** Kill, wipe the data directory, remove, and a new node joins in its place (promoted if the old one voted). */
  private async replace(action: MemberAction & { kind: "replace" }): Promise<number> {
    const { control } = this.options;
    const { cluster, events } = control;
    const wasVoter = this.members.voters.includes(action.id);
    await control.kill(action.id);
    rmSync(cluster.spec(action.id).dataDir, { recursive: true, force: true });
    this.updateEndpoints(action.id);
    await cluster.removeNode(action.id);
    countOne(events.membershipChanges, wasVoter ? "remove voter" : "remove learner");
    this.members = applyChange(this.members, { kind: "remove", id: action.id });
    const id = await this.join();
    countOne(events.membershipChanges, "add learner");
    this.members = applyChange(this.members, { kind: "add" }, id);
    if (wasVoter) {
      await this.promote(id);
      countOne(events.membershipChanges, "promote");
      this.members = applyChange(this.members, { kind: "promote", id });
    }
    countOne(events.membershipChanges, "replace (wiped disk)");
    return id;
  }

  /** The clients' endpoints: every node the tool runs, but `except`. */
  private updateEndpoints(except?: number): void {
    this.options.setEndpoints(this.options.control.cluster.specs.filter((spec) => spec.id !== except).map((spec) => spec.apiUrl));
  }

  /**
   * After a failed request: waits for a committed, non-joint configuration and takes it as
   * the members asked for; nodes the tool runs that are no longer members are forgotten.
   */
  private async settle(): Promise<void> {
    const { control } = this.options;
    let view: MembersAnswer | undefined;
    await control.waitUntil(SETTLE_WAIT_MS, async () => {
      view = await this.fetchMembers();
      return view !== undefined && view.committed && !view.joint;
    });
    if (!view) return;
    const ids = (role: string) => view!.members.filter((member) => member.role === role).map((member) => member.id);
    this.members = { voters: ids("voter"), learners: ids("learner") };
    control.events.note(`the cluster's own view after the failure: ${describeMembers(this.members)} (configuration index ${view.index}${view.committed ? "" : ", not committed"})`);
    const members = new Set(view.members.map((member) => member.id));
    for (const spec of [...control.cluster.specs]) {
      if (members.has(spec.id)) continue;
      if (control.cluster.isRunning(spec.id)) void control.nextExit(spec.id, "not a member");
      await control.cluster.forget(spec.id);
    }
    this.updateEndpoints();
  }

  /** The leader's membership view, through any running node. */
  async fetchMembers(): Promise<MembersAnswer | undefined> {
    const endpoints = this.options.control.cluster.specs.filter((spec) => this.options.control.cluster.isRunning(spec.id)).map((spec) => spec.apiUrl);
    if (endpoints.length === 0) return undefined;
    const client = new KvClient({ endpoints, operationTimeoutMs: 5000, requestTimeoutMs: 2000 });
    try {
      return await client.members();
    } catch {
      return undefined;
    } finally {
      client.close();
    }
  }
}

function describeAction(action: MemberAction, newId: number | undefined): string {
  switch (action.kind) {
    case "add":
      return `added n${newId ?? "?"} as a learner`;
    case "promote":
      return `promoted n${action.id === "new" ? (newId ?? "?") : action.id}`;
    case "remove":
      return `removed n${action.id}`;
    case "replace":
      return `replaced n${action.id} (killed, disk wiped, removed) by n${newId ?? "?"}`;
  }
}

export function describeMembers(members: Members): string {
  const list = (ids: number[]) => [...ids].sort((a, b) => a - b).map((id) => `n${id}`).join(",") || "none";
  return `voters ${list(members.voters)}${members.learners.length > 0 ? ` learners ${list(members.learners)}` : ""}`;
}
