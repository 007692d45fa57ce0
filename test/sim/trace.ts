/**
 * Opt-in event trace for replaying a seed: RAFTWAL_SIM_TRACE=1 prints what every
 * host does (starts, crashes, Readies and their durable parts). Off by default; the
 * callers test `TRACE_ENABLED` before building a line, so it costs nothing when off.
 */
export const TRACE_ENABLED = process.env.RAFTWAL_SIM_TRACE === "1";

export function trace(tick: number, node: number, text: string): void {
  if (TRACE_ENABLED) console.log(`t${tick} n${node} ${text}`);
}
