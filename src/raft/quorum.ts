/**
 * Majority arithmetic (section 5.2: "a candidate wins an election if it receives
 * votes from a majority of the servers"; section 5.3: an entry is committed once
 * "replicated on a majority of the servers").
 */

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index present on a majority, given each voter's match index. `scratch`
 * is a caller-owned array of the same length, reused to avoid an allocation per call.
 */
export function quorumIndex(matches: ArrayLike<number>, scratch: number[]): number {
  const count = matches.length;
  // Insertion sort, descending: voter counts are small (a handful).
  for (let i = 0; i < count; i++) {
    const value = matches[i];
    let j = i - 1;
    while (j >= 0 && scratch[j] < value) {
      scratch[j + 1] = scratch[j];
      j -= 1;
    }
    scratch[j + 1] = value;
  }
  return scratch[majority(count) - 1];
}

export type VoteResult = "won" | "lost" | "pending";

/** The outcome of an election given the votes received so far (true = granted). */
export function voteResult(votes: ReadonlyMap<number, boolean>, voterCount: number): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const vote of votes.values()) {
    if (vote) granted += 1;
    else rejected += 1;
  }
  const needed = majority(voterCount);
  if (granted >= needed) return "won";
  if (voterCount - rejected < needed) return "lost";
  return "pending";
}
