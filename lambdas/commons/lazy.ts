/**
 * A value built on first use and kept for the container's life. Handlers use it for settings that
 * only their own route needs: the local server loads every route module at start, configured or not,
 * so reading them at module load would stop unrelated routes from starting.
 */
export function lazy<T>(create: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: create() }).value;
}
