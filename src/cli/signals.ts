/**
 * Stopping a long-running command (`raftwal node`, `raftwal cluster`) on the operator's
 * signal. The handlers stay installed until the process ends, so that no later signal
 * kills the process by Node's default action while it closes: the first SIGINT, SIGTERM
 * or SIGHUP asks for an orderly stop; a later SIGINT (a second Ctrl-C) asks to force it;
 * a later SIGTERM or SIGHUP changes nothing (the stop is under way).
 */

const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export interface ShutdownSignals {
  /** The first signal: stop in order. */
  first: Promise<NodeJS.Signals>;
  /** A SIGINT after the first signal: stop now. */
  again: Promise<NodeJS.Signals>;
  /** Removes the handlers (for in-process callers; a command's process keeps them until it exits). */
  dispose(): void;
}

export function shutdownSignals(): ShutdownSignals {
  let received = 0;
  let resolveFirst!: (signal: NodeJS.Signals) => void;
  let resolveAgain!: (signal: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (resolveFirst = resolve));
  const again = new Promise<NodeJS.Signals>((resolve) => (resolveAgain = resolve));
  const handler = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) resolveFirst(signal);
    else if (signal === "SIGINT") resolveAgain(signal);
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, handler);
  return {
    first,
    again,
    dispose: () => {
      for (const signal of SHUTDOWN_SIGNALS) process.off(signal, handler);
    },
  };
}
