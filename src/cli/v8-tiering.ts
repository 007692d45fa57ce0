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
 * Set from the CLI's entry point, before the rest of the program is loaded, so that every
 * function's budget is the new one; a budget given on the command line
 * (`node --interrupt-budget=N`) wins. A library embedding raftwal in its own process can
 * start Node with the same flag (README, "Embedding raftwal").
 */
import v8 from "node:v8";

export const V8_INTERRUPT_BUDGET = 4000;

export function tuneV8Tiering(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((flag) => flag.startsWith("--interrupt-budget=") || flag === "--interrupt-budget")) return;
  v8.setFlagsFromString(`--interrupt-budget=${V8_INTERRUPT_BUDGET}`);
}
