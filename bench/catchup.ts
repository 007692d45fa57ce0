/**
 * `npm run bench:catchup`: how long a follower that missed compacted entries takes to catch
 * up while the cluster keeps writing. A 3-node cluster of `raftwal node` processes on
 * loopback (the KV service, fsync on, a snapshot every --snapshot-every entries) is loaded
 * with 16 KiB values; a follower is killed; more is written, so the leader compacts past it;
 * then, under a steady load of 16 KiB writes over the same keys, the follower is restarted.
 *
 * Reported per round: seconds from the restart until the follower's applied index is
 * within CAUGHT_UP_ENTRIES of the leader's commit index (polled through /status), or "-"
 * when the load ended first; snapshots the follower installed meanwhile; times the leader
 * held a snapshot back (src/node/snapshot-policy.ts); writes/s of the load. A snapshot the
 * follower installs is useful only if the leader still holds the entries after it: a leader
 * that snapshots again during the transfer makes it need the next one.
 *
 * Every round starts a fresh cluster; results go to bench/results/catchup.json.
 */
import { loadState, logLines, secondsToCatchUp, sleep, withLoadedCluster } from "./cluster-steps.js";
import { writeResults } from "./results.js";
import { handleUsage, numberOption } from "./usage.js";
import { SteadyWriteLoad } from "./write-load.js";
import { median } from "./stats.js";

const HELP = `Usage: npm run bench:catchup [-- options]

A real 3-node cluster loaded with KV state; per round a follower is killed, the leader
compacts past it, and it is restarted under a steady write load: the seconds until it is
caught up, the snapshots it installed meanwhile, the snapshots the leader held back.

  --state-mb N        state to load, in MB of 16 KiB values (default 300; --quick: 24)
  --snapshot-every N  each node's snapshot interval, in entries (default 2000; --quick: 300)
  --seconds N         how long the load runs after the restart (default 60; --quick: 15)
  --rounds N          fresh clusters measured (default 2; --quick: 1)
  --quick             a small, fast run to check the benchmark works
  --help              this text`;

handleUsage(`${HELP}\n`, ["--state-mb", "--snapshot-every", "--seconds", "--rounds", "--quick"]);
const quick = process.argv.includes("--quick");
const flag = (name: string, fallback: number) => numberOption(HELP, name, fallback, true);

const VALUE_BYTES = 16 * 1024;
const KEYS = Math.ceil((flag("--state-mb", quick ? 24 : 300) * 1_000_000) / VALUE_BYTES);
const SNAPSHOT_EVERY = flag("--snapshot-every", quick ? 300 : 2000);
const LOAD_SECONDS = flag("--seconds", quick ? 15 : 60);
const ROUNDS = flag("--rounds", quick ? 1 : 2);
const WRITERS = 16;
const LOAD_KEYS = 1000;
/** The load runs this long before the follower restarts (its first seconds, left out of writes/s). */
const RESTART_AFTER_SECONDS = 2;

interface Round {
  keys: number;
  snapshotEvery: number;
  /** Seconds from the restart until caught up; undefined: not within the load. */
  catchUpSeconds: number | undefined;
  snapshotsInstalled: number;
  snapshotsHeldBack: number;
  writesPerSecond: number;
  loadErrors: number;
}

async function runRound(round: number): Promise<Round> {
  const state = { keys: KEYS, valueBytes: VALUE_BYTES, writers: WRITERS };
  return withLoadedCluster(["--snapshot-every", String(SNAPSHOT_EVERY)], state, async ({ cluster, leader, follower, endpoints, loadSeconds }) => {
    await cluster.kill(follower);
    // Three snapshot intervals more: the leader compacts past everything the follower holds.
    await loadState(endpoints, { ...state, keys: Math.min(KEYS, 3 * SNAPSHOT_EVERY) });
    console.log(`round ${round}: ${KEYS} keys of 16 KiB loaded in ${loadSeconds.toFixed(1)} s; node ${follower} killed, restarted under load`);
    // Over few keys of their own, so the state (and the snapshot to send) grows by at most 16 MB.
    const load = new SteadyWriteLoad({ endpoints, clients: WRITERS, valueBytes: VALUE_BYTES, keys: LOAD_KEYS });
    load.start();
    let catchUpSeconds: number | undefined;
    try {
      await sleep(RESTART_AFTER_SECONDS * 1000);
      cluster.startNode(follower);
      catchUpSeconds = await secondsToCatchUp(cluster, leader, follower, LOAD_SECONDS);
    } finally {
      await load.stop();
    }
    const writes = load.writesPerSecond.slice(RESTART_AFTER_SECONDS, -1);
    return {
      keys: KEYS,
      snapshotEvery: SNAPSHOT_EVERY,
      catchUpSeconds,
      snapshotsInstalled: (await logLines(cluster, follower, "installed a snapshot from the leader")).length,
      snapshotsHeldBack: (await logLines(cluster, leader, "snapshot held back")).length,
      writesPerSecond: median(writes),
      loadErrors: load.errors,
    };
  });
}

async function main(): Promise<void> {
  console.log(`raftwal catch-up benchmark: ${ROUNDS} round(s), ${KEYS} keys of 16 KiB, a snapshot every ${SNAPSHOT_EVERY} entries, ${LOAD_SECONDS} s of load`);
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) rounds.push(await runRound(round));
  console.table(
    rounds.map((r, i) => ({
      round: i + 1,
      "caught up after s": r.catchUpSeconds === undefined ? `- (not within ${LOAD_SECONDS} s)` : r.catchUpSeconds.toFixed(1),
      "snapshots installed": r.snapshotsInstalled,
      "leader held back": r.snapshotsHeldBack,
      "writes/s": Math.round(r.writesPerSecond),
      "load errors": r.loadErrors,
    })),
  );
  const path = writeResults("catchup", { date: new Date().toISOString(), keys: KEYS, valueBytes: VALUE_BYTES, snapshotEvery: SNAPSHOT_EVERY, loadSeconds: LOAD_SECONDS, rounds });
  console.log(`results written to ${path}`);
}

await main();
