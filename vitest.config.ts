import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["services/**/*.test.ts", "gateway/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.test.ts", "web/**/*.test.ts"],
    // Starts FerretDB when MONGODB_URL is unset and hands the URL to tests.
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // Test files start real servers and databases; two cores, so stay modest.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
