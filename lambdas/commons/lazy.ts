/**
 * A value built on first use and kept for the container's life. Handlers use it for settings that
 * only their own route needs: the local server loads every route module at start, configured or not,
 * so reading them at module load would stop unrelated routes from starting.
 */
export function lazy<T>(create: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: create() }).value;
}

/**
 * The async kin of `lazy`: `load` runs on first use and its result is kept; a failed load is not
 * kept, so the next use tries again. What the Lambda bundle keeps in a chunk of its own loads so.
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    }));
}
