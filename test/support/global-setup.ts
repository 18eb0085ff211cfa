import type { TestProject } from "vitest/node";
import { startFerretDB } from "../../scripts/ferretdb/server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A MongoDB-wire server for the whole run: MONGODB_URL, or a FerretDB started here. */
    mongodbUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.MONGODB_URL;
  if (given) {
    project.provide("mongodbUrl", given);
    return;
  }
  const ferret = await startFerretDB();
  project.provide("mongodbUrl", ferret.url);
  return async () => {
    await ferret.stop();
  };
}
