import { logger } from '../commons/logger';
import type { Doorbell } from './sweeper';

/**
 * The local runtime's stand-in for SQS: an in-process queue that hands each rung order to `process`
 * with bounded concurrency, never the same order twice at once, and drains on stop.
 */
export class LocalQueue implements Doorbell {
  private readonly waiting = new Set<string>();
  private readonly running = new Set<string>();
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly process: (orderId: string) => Promise<unknown>,
    private readonly concurrency = 4,
  ) {}

  async ring(orderIds: readonly string[]): Promise<void> {
    if (this.stopped) return;
    for (const orderId of orderIds) this.waiting.add(orderId);
    this.pump();
  }

  /** Resolves when nothing is waiting or running. */
  drained(): Promise<void> {
    return this.waiting.size || this.running.size ? this.idle : Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting.clear();
    await this.drained();
  }

  private pump(): void {
    if (!this.running.size && this.waiting.size) this.idle = new Promise((resolve) => (this.wake = resolve));
    for (const orderId of [...this.waiting]) {
      if (this.running.size >= this.concurrency) break;
      if (this.running.has(orderId)) continue;
      this.waiting.delete(orderId);
      this.running.add(orderId);
      this.process(orderId)
        .catch((error: unknown) => logger.warn('local dispatch failed; the sweeper will retry', { order_id: orderId, error }))
        .finally(() => {
          this.running.delete(orderId);
          this.pump();
          if (!this.running.size && !this.waiting.size) this.wake?.();
        });
    }
  }
}
