/**
 * Waiting for a condition, bounded, in tests that run real timers (nodes on TCP, processes):
 * for convergence, catching up and repair, never for timing. Simulated tests drive ticks instead.
 */
import { setTimeout as sleep } from "node:timers/promises";

const WAIT_TIMEOUT_MS_DEFAULT = 20_000;

/** Retries `check` every 50 ms until it passes (its last error after `timeoutMs`). Resolves with what it returns. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** Polls `probe` every 10 ms until it returns a value (not undefined or false); fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
