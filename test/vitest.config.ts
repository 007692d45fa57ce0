import { defineConfig } from "vitest/config";

/**
 * A passing run prints little: dots, failures, the summary. RAFTWAL_TEST_VERBOSE=1 lists every
 * test file and slow test and prints the console output of passing tests too (seeds, reports).
 */
const verbose = process.env.RAFTWAL_TEST_VERBOSE === "1";

export default defineConfig({
  test: {
    root: new URL("..", import.meta.url).pathname,
    include: ["test/**/*.test.ts", "storage/**/*.test.ts", "src/**/*.test.ts"],
    reporters: [verbose ? "default" : "dot", new URL("./summary-reporter.ts", import.meta.url).pathname],
    // Console output of a test (its seed, a simulation's report) is shown only when it fails.
    silent: verbose ? false : "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
