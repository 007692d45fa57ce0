import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: new URL("..", import.meta.url).pathname,
    include: ["test/**/*.test.ts", "storage/**/*.test.ts", "src/**/*.test.ts"],
    reporters: ["default", new URL("./summary-reporter.ts", import.meta.url).pathname],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
