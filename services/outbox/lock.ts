/**
 * Runs `fn` once every earlier call with the same key has settled.
 *
 * Why: FerretDB 1.x applies an update as query, modify in Go, then write the
 * whole document back by _id, with no transaction around it (FerretDB issue
 * #3040). Two concurrent updates of one document therefore lose one of them
 * silently, even `$inc`, `$push`/`$pull` or a conditional (compare-and-set)
 * filter. A relay's `$pull` racing a repository's `$set`+`$push` could revert
 * the domain change *and* drop its new outbox entry. Until that is fixed,
 * every update of a document must go through one lock per collection, shared
 * by the repository and its outbox source (in one process; several replicas
 * writing the same documents are not safe on FerretDB 1.x).
 */
export type DocumentLock = <T>(key: string, fn: () => Promise<T>) => Promise<T>;

/** An in-process lock per key (per document id); keys are forgotten when idle. */
export function documentLock(): DocumentLock {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn);
    const tail = result.then(
      () => {},
      () => {},
    );
    tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
