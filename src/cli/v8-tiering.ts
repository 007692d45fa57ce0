/**
 * How soon V8 optimizes the node's code. V8 runs a function in its interpreter until the
 * function has spent its "interrupt budget" (Node 20: 67,584 bytecode units executed) a
 * few times, and only then compiles it with TurboFan. A raftwal write crosses some hundred
 * functions (HTTP, the KV API, the pump, the core, protobuf, the WAL, the transport), each
 * run once or twice per write, so at default budgets the path stays interpreted for
 * thousands of writes: measured, one client's puts in the first 3 s after start ran at
 * 0.75x etcd's (3.6-5.5 ms of CPU per put over the three nodes against 1.7-2.3 ms once
 * settled). A budget of 4,000 optimizes the path after a few hundred writes: seconds 2-5
 * after start run faster, but the first second is slower, because the compilation moves into
 * it (the README's "The first seconds after start" has the measurements); settled
 * throughput was unchanged.
 *
 * Set once a node serves (the binary passes this as `onNodeServing`), not at the entry
 * point: a budget lowered before the program loads makes V8 optimize code that runs only
 * while the process starts (module loading, protobuf's reflection, opening the data
 * directory), and on a machine whose cores the nodes share that compilation slows every
 * node's start-up. Measured 2026-11-27 (8 alternating pairs of fresh 3-node clusters as
 * `raftwal cluster` runs them, 2 cores): processes started → a leader known 1.82-2.55 s
 * (median 2.24) with the budget lowered once serving against 2.49-3.22 s (median 2.87) with
 * it lowered at the entry point; one client's puts in the first 3 s after that were the
 * same within the noise (per-pair ratio median 1.05). V8 reads the flag each time a
 * function's budget runs out, so code loaded earlier takes the new budget too. A budget
 * given on the command line (`node --interrupt-budget=N`) wins. A library embedding
 * raftwal in its own process can start Node with the same flag (README, "Embedding raftwal").
 */
import v8 from "node:v8";

export const V8_INTERRUPT_BUDGET = 4000;

export function tuneV8Tiering(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((flag) => flag.startsWith("--interrupt-budget=") || flag === "--interrupt-budget")) return;
  v8.setFlagsFromString(`--interrupt-budget=${V8_INTERRUPT_BUDGET}`);
}
