import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests each start their own emulator; two cores here, so keep files few at a time.
    maxWorkers: 2,
    allowOnly: false,
    reporters: ["default", "./test/support/summaryReporter.ts"],
  },
});
