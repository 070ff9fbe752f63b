import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // The routing guard: statements that would not route on Citus fail their test file.
    setupFiles: ["test/setup-routing-guard.ts"],
    // Each test file gets its own database, so files run in parallel safely.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
