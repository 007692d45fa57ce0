/**
 * `npm run bench:catchup-tail`: what the catch-up tail (src/node/snapshot-policy.ts,
 * compactionPoint) saves when a follower restarts just after the leader compacted, as in a
 * rolling restart under load. A 3-node cluster of `raftwal node` processes on loopback (the
 * KV service, fsync on, a snapshot every --snapshot-every entries) holds --state-mb of 16 KiB
 * values; under a steady load of 16 writers of 16 KiB values a follower is killed, the
 * leader's next snapshot passes everything the follower applied, and the follower is
 * restarted at once.
 *
 * Rounds alternate the nodes' `--snapshot-catch-up` between --tail (default 5,000 entries,
 * etcd's SnapshotCatchUpEntries; capped at about 64 MiB of entries) and 0 (compact up to the
 * snapshot, as before the tail). Reported per round: entries the follower was behind the
 * leader's snapshot at the restart, seconds from the restart until it is caught up (applied
 * within 500 entries of the leader's commit), snapshots it installed, and the load's
 * writes/s: the median second before the kill, the mean and slowest second while the
 * follower caught up (from its restart), as a ratio to the median before. Every round starts
 * a fresh cluster; results (with every round's per-second series) go to
 * bench/results/catchup-tail.json.
 */
import type { LocalCluster } from "../src/cli/local-cluster.js";
import { logLines, secondsToCatchUp, sleep, until, withLoadedCluster } from "./cluster-steps.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";
import { SteadyWriteLoad, throughputDip, type ThroughputDip } from "./write-load.js";
import { median } from "./stats.js";

const HELP = `Usage: npm run bench:catchup-tail [-- options]

A real 3-node cluster loaded with KV state; per round a follower is killed under a steady
write load and restarted as soon as the leader snapshotted past it. Rounds alternate the
catch-up tail (--snapshot-catch-up) between --tail entries and 0: the seconds until the
follower is caught up and the snapshots it installed.

  --state-mb N        state to load, in MB of 16 KiB values (default 100; --quick: 16)
  --snapshot-every N  each node's snapshot interval, in entries (default 2000; --quick: 300)
  --tail N            the tail of the rounds with one, in entries (default 5000)
  --rounds N          fresh clusters measured, alternating (default 4; --quick: 2)
  --quick             a small, fast run to check the benchmark works
  --help              this text`;

handleUsage(`${HELP}\n`, ["--state-mb", "--snapshot-every", "--tail", "--rounds", "--quick"]);
const quick = process.argv.includes("--quick");
const flag = (name: string, fallback: number) => numberOption(HELP, name, fallback, true);

const VALUE_BYTES = 16 * 1024;
const KEYS = Math.ceil((flag("--state-mb", quick ? 16 : 100) * 1_000_000) / VALUE_BYTES);
const SNAPSHOT_EVERY = flag("--snapshot-every", quick ? 300 : 2000);
const TAIL = flag("--tail", 5000);
const ROUNDS = flag("--rounds", quick ? 2 : 4);
const WRITERS = 16;
const LOAD_KEYS = 1000;
/** The load runs this long before the kill; its first second is left out of the rate before. */
const KILL_AFTER_SECONDS = 5;
const WARMUP_SECONDS = 1;
/** ... and this long after the follower caught up. */
const AFTER_SECONDS = 3;
/** How long a follower may take to catch up before the round reports "-". */
const CATCH_UP_SECONDS_MAX = 60;

interface Round {
  tail: number;
  /** Entries between what the follower applied and the leader's snapshot at the restart. */
  behindSnapshot: number;
  catchUpSeconds: number | undefined;
  snapshotsInstalled: number;
  /** Writes/s before the kill and while the follower caught up (from its restart). */
  writes: ThroughputDip;
  writesPerSecond: number[];
  loadErrors: number;
}

/** Kills `follower`, waits until the leader snapshotted past what it applied, restarts it; how far behind the snapshot it was. */
async function killUntilCompactedPast(cluster: LocalCluster, leader: number, follower: number): Promise<number> {
  const applied = (await cluster.status(follower))!.appliedIndex;
  await cluster.kill(follower);
  const snapshotIndex = await until("the leader's snapshot past the follower", async () => {
    const index = (await cluster.status(leader))?.snapshotIndex ?? 0;
    return index > applied ? index : undefined;
  }, 120_000);
  cluster.startNode(follower);
  return snapshotIndex - applied;
}

async function runRound(round: number, tail: number): Promise<Round> {
  const nodeArgs = ["--snapshot-every", String(SNAPSHOT_EVERY), "--snapshot-catch-up", String(tail)];
  const state = { keys: KEYS, valueBytes: VALUE_BYTES, writers: WRITERS };
  return withLoadedCluster(nodeArgs, state, async ({ cluster, leader, follower, endpoints, loadSeconds }) => {
    const load = new SteadyWriteLoad({ endpoints, clients: WRITERS, valueBytes: VALUE_BYTES, keys: LOAD_KEYS });
    load.start();
    let behindSnapshot: number;
    let catchUpSeconds: number | undefined;
    let restartSecond: number;
    let loadRanSeconds: number;
    try {
      await sleep(KILL_AFTER_SECONDS * 1000);
      behindSnapshot = await killUntilCompactedPast(cluster, leader, follower);
      restartSecond = load.secondsSinceStart();
      catchUpSeconds = await secondsToCatchUp(cluster, leader, follower, CATCH_UP_SECONDS_MAX);
      await sleep(AFTER_SECONDS * 1000);
    } finally {
      loadRanSeconds = await load.stop();
    }
    console.log(`round ${round} (tail ${tail}): ${KEYS} keys loaded in ${loadSeconds.toFixed(1)} s; node ${follower} restarted ${behindSnapshot} entries behind the leader's snapshot`);
    const timeline = {
      warmupSeconds: WARMUP_SECONDS,
      changeStartSecond: KILL_AFTER_SECONDS,
      changeEndSecond: restartSecond + (catchUpSeconds ?? CATCH_UP_SECONDS_MAX),
      loadSeconds: loadRanSeconds,
    };
    // "Before" is the seconds before the kill; "during" only the catch-up, from the restart.
    const beforeMedian = throughputDip(load.writesPerSecond, timeline).beforeMedian;
    const catchUp = throughputDip(load.writesPerSecond, { ...timeline, changeStartSecond: restartSecond });
    const writes = { ...catchUp, beforeMedian, dipRatio: catchUp.duringMin / beforeMedian, duringMeanRatio: catchUp.duringMean / beforeMedian };
    return {
      tail,
      behindSnapshot,
      catchUpSeconds,
      snapshotsInstalled: (await logLines(cluster, follower, "installed a snapshot from the leader")).length,
      writes,
      writesPerSecond: load.writesPerSecond,
      loadErrors: load.errors,
    };
  });
}

function summary(rounds: Round[], tail: number): Record<string, number | string> {
  const mine = rounds.filter((r) => r.tail === tail);
  const times = mine.map((r) => r.catchUpSeconds ?? Number.POSITIVE_INFINITY);
  return {
    tail,
    rounds: mine.length,
    "median caught up after s": median(times).toFixed(1),
    "snapshots installed (sum)": mine.reduce((sum, r) => sum + r.snapshotsInstalled, 0),
    "median writes/s before": Math.round(median(mine.map((r) => r.writes.beforeMedian))),
    "catching up: mean / before": median(mine.map((r) => r.writes.duringMeanRatio)).toFixed(2),
    "slowest second / before": median(mine.map((r) => r.writes.dipRatio)).toFixed(2),
  };
}

async function main(): Promise<void> {
  console.log(`raftwal catch-up tail benchmark: ${ROUNDS} round(s), ${KEYS} keys of 16 KiB, a snapshot every ${SNAPSHOT_EVERY} entries, tail ${TAIL} against 0`);
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) rounds.push(await runRound(round, round % 2 === 1 ? TAIL : 0));
  console.table(
    rounds.map((r, i) => ({
      round: i + 1,
      tail: r.tail,
      "behind the snapshot": r.behindSnapshot,
      "caught up after s": r.catchUpSeconds === undefined ? `- (not within ${CATCH_UP_SECONDS_MAX} s)` : r.catchUpSeconds.toFixed(1),
      "snapshots installed": r.snapshotsInstalled,
      "writes/s before": Math.round(r.writes.beforeMedian),
      "catching up: mean": Math.round(r.writes.duringMean),
      "slowest second": r.writes.duringMin,
      "load errors": r.loadErrors,
    })),
  );
  console.table([summary(rounds, TAIL), summary(rounds, 0)]);
  const path = writeResults("catchup-tail", { date: new Date().toISOString(), keys: KEYS, valueBytes: VALUE_BYTES, snapshotEvery: SNAPSHOT_EVERY, tail: TAIL, rounds });
  console.log(`results written to ${path}`);
}

await main();
