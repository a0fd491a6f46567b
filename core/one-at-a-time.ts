/**
 * A queue of one: each task starts once the previous one has settled. A task's failure is its own
 * caller's to handle and does not stop the tasks after it.
 */
export function oneAtATime(): <T>(task: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const next = last.catch(() => undefined).then(task);
    last = next;
    return next;
  };
}
