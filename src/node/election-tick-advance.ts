/**
 * How many election ticks a starting node counts at once (etcd's initial election tick
 * advance, etcdserver `adjustTicks`). A node that starts without a leader would otherwise
 * wait a whole randomized election timeout (electionTimeout..2 x electionTimeout ticks,
 * section 5.2) before the first campaign of a fresh or restarted cluster: with the
 * defaults, 1-2 s of a restart spent waiting. Advanced by electionTimeout - 2 ticks, it
 * campaigns after 2..electionTimeout + 1 ticks; the randomization, which keeps split votes
 * rare, is untouched, and 2 ticks are left for a leader's heartbeat to arrive (etcd leaves
 * the same). A single voter cannot split a vote and waits one tick.
 *
 * Time running faster never breaks safety. A node that restarts into a cluster that has a
 * leader may campaign before the leader's heartbeat reaches it: with PreVote and
 * CheckQuorum (both on by default) the voters that hear their leader refuse it without a
 * new term (thesis 4.2.3, 9.6), so the leader is not disturbed.
 */
import { isVoter, voterIds } from "../raft/cluster-config.js";
import type { RaftCore } from "../raft/types.js";

export function initialElectionTickAdvance(core: RaftCore, id: number, electionTimeoutTicks: number): number {
  // A leader already known, or a node repairing lost state (it must not campaign): nothing to hurry.
  if (core.softState().leader !== 0 || core.recovering()) return 0;
  const config = core.clusterConfig().config;
  if (!isVoter(config, id)) return 0;
  return Math.max(0, voterIds(config).length === 1 ? electionTimeoutTicks - 1 : electionTimeoutTicks - 2);
}
