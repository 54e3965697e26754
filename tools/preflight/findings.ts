/**
 * What the preflight found. `fill`: a value the deploy cannot survive (or survives broken), so the
 * preflight refuses; `todo`: something to do by hand that the deploy itself does not need (store a
 * secret's values, create a DNS record); `ok`: checked and fine, for the record.
 */
export type Level = 'fill' | 'todo' | 'ok';

export interface Finding {
  readonly level: Level;
  /** Where to change it: `lib/stage-config.ts:203 STAGES.prod.account`, or an AWS resource. */
  readonly where: string;
  readonly message: string;
}

export const fill = (where: string, message: string): Finding => ({ level: 'fill', where, message });
export const todo = (where: string, message: string): Finding => ({ level: 'todo', where, message });
export const ok = (where: string, message: string): Finding => ({ level: 'ok', where, message });
