import { randomBytes } from "node:crypto";
import { inject } from "vitest";

/** The run's MongoDB-wire server (see global-setup.ts). */
export function mongodbUrl(): string {
  return inject("mongodbUrl");
}

/** A database name no other test uses, so test files never see each other's data. */
export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}
