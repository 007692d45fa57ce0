/**
 * An opt-in trace of where one write's time goes (RaftNodeOptions.latencyTrace, `raftwal node
 * --trace-latency`). On the leader: the time of each stage of a proposal, from the moment its
 * HTTP request was handed to the API to the moment the answer was written. On a follower: the
 * time of each stage of an entry, from the moment the append carrying it arrived to the moment
 * the acknowledgement covering it was handed to the transport (the leader's "firstFollowerAck"
 * is the faster follower's last stage plus the trip back). Each on its own node's clock.
 * `GET /debug/latency` serves the medians (kv/http-api.ts); the cluster benchmark prints them.
 *
 * Off by default, and then it costs nothing: the node holds no trace, and every hook is one
 * `undefined` check. On, a hook is a Map lookup per entry or message; the trace keeps at most
 * OPEN_SAMPLES_MAX proposals in flight and FINISHED_SAMPLES_MAX finished ones.
 *
 * The core does no I/O and keeps no clock (src/raft): these timestamps belong to the node
 * shell, which sees every stage (the request, the proposal, the sends, the WAL, the acks,
 * the Ready that hands the entry out as committed, its application).
 */
import { performance } from "node:perf_hooks";
import { MessageType, type Entry, type Message } from "../proto/schema.js";

/** The stages of one traced write, in the order they happen on a leader. */
export const LATENCY_STAGES = [
  /** The API got the request (its headers parsed): the origin of every other time. */
  "requestReceived",
  /** Its body (the value) read. */
  "bodyRead",
  /** The core accepted the proposal (it holds the entry, unstable). */
  "proposed",
  /** The first append carrying the entry was handed to the transport (thesis 10.2.1: before the leader's own write). */
  "sentToFollowers",
  /** The leader handed the entry to its WAL. */
  "leaderAppendIssued",
  /** The leader's WAL write (O_DSYNC) of the entry completed. */
  "leaderWalSynced",
  /** The first follower's acknowledgement covering the entry arrived. */
  "firstFollowerAck",
  /** A Ready handed the entry out as committed (a majority holds it durably). */
  "committed",
  /** The state machine applied it. */
  "applied",
  /** The API wrote the answer. */
  "responseWritten",
] as const;

export type LatencyStage = (typeof LATENCY_STAGES)[number];

/** The stages of one entry on a follower, in the order they happen. */
export const FOLLOWER_LATENCY_STAGES = [
  /** The append carrying the entry arrived (decoded and handed to the node): the origin. */
  "appendReceived",
  /** The follower handed the entry to its WAL. */
  "appendIssued",
  /** Its WAL write (O_DSYNC) of the entry completed. */
  "walSynced",
  /** The acknowledgement covering the entry was handed to the transport. */
  "acknowledged",
] as const;

export type FollowerLatencyStage = (typeof FOLLOWER_LATENCY_STAGES)[number];

/** Each stage's position in a sample's times. */
function stageIndexes<Stage extends string>(stages: readonly Stage[]): Record<Stage, number> {
  return Object.fromEntries(stages.map((stage, i) => [stage, i])) as Record<Stage, number>;
}
const STAGE_INDEX = stageIndexes(LATENCY_STAGES);
const FOLLOWER_STAGE_INDEX = stageIndexes(FOLLOWER_LATENCY_STAGES);
/** Proposals traced at once; past this the oldest is dropped (a bound, not an expected load). */
const OPEN_SAMPLES_MAX = 10_000;
/** Finished samples kept for the summary (the newest ones). */
const FINISHED_SAMPLES_MAX = 20_000;

/** One traced write: its stage times (performance.now(), ms; NaN for a stage not reached) and its log index (0 until proposed). */
export interface LatencySample {
  readonly times: Float64Array;
  index: number;
}

export interface LatencyStageSummary<Stage extends string = LatencyStage> {
  stage: Stage;
  /** Median time from the first stage (requestReceived; appendReceived on a follower) to this stage, in µs. */
  sinceReceivedUsP50: number;
  sinceReceivedUsP90: number;
  /** Median time from the previous stage to this one, in µs (stages may overlap: the leader's write and the followers' acks run in parallel). */
  stepUsP50: number;
  /** Samples that reached this stage. */
  samples: number;
}

export interface LatencySummary {
  samples: number;
  stages: LatencyStageSummary[];
  /** The entries this node traced as a follower (times since their append arrived). */
  follower: { samples: number; stages: Array<LatencyStageSummary<FollowerLatencyStage>> };
}

export class LatencyTrace {
  private readonly open = new Map<number, LatencySample>();
  private finished: Float64Array[] = [];
  /**
   * Entries received as a follower and not yet acknowledged, by index: their stage times. Only
   * an index above every one opened before gets a sample (a first arrival, not a resend or the
   * replacement of a truncated tail), so the map's order is the indexes' order.
   */
  private readonly followerOpen = new Map<number, Float64Array>();
  private followerHighestOpened = 0;
  private followerFinished: Float64Array[] = [];

  /** A new sample whose request was received at `receivedMs` (performance.now()). */
  begin(receivedMs = performance.now()): LatencySample {
    const times = new Float64Array(LATENCY_STAGES.length).fill(Number.NaN);
    times[0] = receivedMs;
    return { times, index: 0 };
  }

  /** Records `stage` of `sample` now (the first time only). */
  mark(sample: LatencySample, stage: LatencyStage): void {
    markOnce(sample.times, STAGE_INDEX[stage]);
  }

  /** The core accepted the sample's proposal at `index`: later stages are found by index. */
  proposed(sample: LatencySample, index: number): void {
    this.mark(sample, "proposed");
    sample.index = index;
    this.open.set(index, sample);
    if (this.open.size > OPEN_SAMPLES_MAX) this.open.delete(this.open.keys().next().value!);
  }

  /** Records `stage` for every traced entry among `entries`. */
  markEntries(entries: readonly Entry[], stage: LatencyStage): void {
    if (this.open.size === 0) return;
    for (const entry of entries) {
      const sample = this.open.get(entry.index);
      if (sample) this.mark(sample, stage);
    }
  }

  /** `entries` handed to this node's WAL (a leader's own write, or a follower's). */
  walAppendIssued(entries: readonly Entry[]): void {
    this.markEntries(entries, "leaderAppendIssued");
    this.markFollowerEntries(entries, FOLLOWER_STAGE_INDEX.appendIssued);
  }

  /** This node's WAL write of `entries` completed. */
  walSynced(entries: readonly Entry[]): void {
    this.markEntries(entries, "leaderWalSynced");
    this.markFollowerEntries(entries, FOLLOWER_STAGE_INDEX.walSynced);
  }

  /**
   * Messages about to be sent: appends carrying traced entries mark them sent; an accepted
   * append response acknowledges (and completes) every entry received as a follower up to its index.
   */
  sending(messages: readonly Message[]): void {
    if (this.open.size === 0 && this.followerOpen.size === 0) return;
    for (const message of messages) {
      if (message.type === MessageType.APPEND) this.markEntries(message.entries, "sentToFollowers");
      else if (message.type === MessageType.APPEND_RESPONSE && !message.reject) this.followerAcknowledged(message.index);
    }
  }

  /**
   * A message received: an accepted append response acknowledges every traced entry up to its
   * index; an append opens a follower sample for each entry it carries on its first arrival.
   */
  received(message: Message): void {
    if (message.type === MessageType.APPEND) {
      if (message.entries.length > 0) this.followerReceived(message.entries);
      return;
    }
    if (this.open.size === 0 || message.type !== MessageType.APPEND_RESPONSE || message.reject) return;
    for (const [index, sample] of this.open) if (index <= message.index) this.mark(sample, "firstFollowerAck");
  }

  /** The answer was written: the sample is complete. */
  finish(sample: LatencySample): void {
    this.mark(sample, "responseWritten");
    if (this.open.get(sample.index) === sample) this.open.delete(sample.index);
    this.finished = keepNewest(this.finished, sample.times);
  }

  /** Forgets the finished samples (to summarize a settled period only). */
  reset(): void {
    this.finished = [];
    this.followerFinished = [];
  }

  summary(): LatencySummary {
    return {
      samples: this.finished.length,
      stages: summarizeStages(LATENCY_STAGES, this.finished),
      follower: { samples: this.followerFinished.length, stages: summarizeStages(FOLLOWER_LATENCY_STAGES, this.followerFinished) },
    };
  }

  private followerReceived(entries: readonly Entry[]): void {
    const now = performance.now();
    for (const entry of entries) {
      if (entry.index <= this.followerHighestOpened) continue;
      this.followerHighestOpened = entry.index;
      const times = new Float64Array(FOLLOWER_LATENCY_STAGES.length).fill(Number.NaN);
      times[0] = now;
      this.followerOpen.set(entry.index, times);
    }
    while (this.followerOpen.size > OPEN_SAMPLES_MAX) this.followerOpen.delete(this.followerOpen.keys().next().value!);
  }

  private markFollowerEntries(entries: readonly Entry[], stage: number): void {
    if (this.followerOpen.size === 0) return;
    for (const entry of entries) {
      const times = this.followerOpen.get(entry.index);
      if (times) markOnce(times, stage);
    }
  }

  /** An accepted append response for `index` leaves: the entries up to it are acknowledged (the oldest first: the map is in index order). */
  private followerAcknowledged(index: number): void {
    for (const [entryIndex, times] of this.followerOpen) {
      if (entryIndex > index) break;
      markOnce(times, FOLLOWER_STAGE_INDEX.acknowledged);
      this.followerOpen.delete(entryIndex);
      this.followerFinished = keepNewest(this.followerFinished, times);
    }
  }
}

function markOnce(times: Float64Array, stage: number): void {
  if (Number.isNaN(times[stage])) times[stage] = performance.now();
}

/** `finished` with `times` appended, halved to the newest once it holds FINISHED_SAMPLES_MAX. */
function keepNewest(finished: Float64Array[], times: Float64Array): Float64Array[] {
  finished.push(times);
  return finished.length > FINISHED_SAMPLES_MAX ? finished.slice(-FINISHED_SAMPLES_MAX / 2) : finished;
}

/** Per stage: the p50 and p90 of the time since the first stage, and the p50 of the step from the stage before. */
function summarizeStages<Stage extends string>(stages: readonly Stage[], finished: readonly Float64Array[]): Array<LatencyStageSummary<Stage>> {
  return stages.map((stage, i) => {
    const since: number[] = [];
    const step: number[] = [];
    for (const times of finished) {
      if (Number.isNaN(times[i])) continue;
      since.push((times[i] - times[0]) * 1000);
      if (i > 0 && !Number.isNaN(times[i - 1])) step.push((times[i] - times[i - 1]) * 1000);
    }
    since.sort((a, b) => a - b);
    step.sort((a, b) => a - b);
    return { stage, sinceReceivedUsP50: quantile(since, 0.5), sinceReceivedUsP90: quantile(since, 0.9), stepUsP50: i === 0 ? 0 : quantile(step, 0.5), samples: since.length };
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
}
