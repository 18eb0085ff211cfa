import type { TestProject } from "vitest/node";
import { startFerretDB } from "../../scripts/ferretdb/server.js";
import { declareTopology, localVhostUrl } from "../../scripts/rabbitmq-vhost.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A MongoDB-wire server for the whole run: MONGODB_URL, or a FerretDB started here. */
    mongodbUrl: string;
    /** RabbitMQ for the run: AMQP_URL, or the local broker's "myevents-test" vhost. */
    amqpUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const amqpUrl = process.env.AMQP_URL ?? testVhostUrl();
  await declareTopology(amqpUrl);
  project.provide("amqpUrl", amqpUrl);
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

/**
 * Tests publish to the "myevents" exchange; a vhost of their own keeps
 * those messages away from a mesh running against the same local broker.
 * Falls back to the default vhost where rabbitmqctl is not available.
 */
function testVhostUrl(): string {
  return localVhostUrl("myevents-test") ?? "amqp://guest:guest@127.0.0.1:5672";
}

