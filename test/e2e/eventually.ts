/** Waiting in end-to-end tests, shared by the test files of test/e2e. */

/**
 * Retries `check` every 50 ms until it passes (bounded: its last error after `timeoutMs`);
 * for convergence, catching up and repair, not for timing. Resolves with what it returns.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
