import type { Collection, Db } from "mongodb";
import { isDuplicateKey } from "../runtime/mongo.js";
import { processedKey, type ProcessedDoc, type ProcessedMessages } from "./processed.js";

/** The processed-message records in the service's MongoDB (collection `processed_messages`). */
export class MongoProcessedMessages implements ProcessedMessages {
  private readonly docs: Collection<ProcessedDoc>;

  constructor(db: Db) {
    this.docs = db.collection<ProcessedDoc>("processed_messages");
  }

  async has(consumer: string, messageId: string): Promise<boolean> {
    return (await this.docs.findOne({ _id: processedKey(consumer, messageId) }, { projection: { _id: 1 } })) !== null;
  }

  async record(consumer: string, messageId: string): Promise<void> {
    try {
      // An insert, not an upsert: atomic on FerretDB too (which loses concurrent updates).
      await this.docs.insertOne({ _id: processedKey(consumer, messageId), at: new Date() });
    } catch (err) {
      if (isDuplicateKey(err)) return; // recorded already
      throw err;
    }
  }
}
