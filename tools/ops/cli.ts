import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { STAGE_NAMES } from '../../lib/stage-config';
import { retryAp21 } from './ap21';
import { egressIps, endRefundCommand, manualReview, reconcile, redrive, showRefund, timeline, waiveReceipt, type CommandResult } from './commands';
import { OpsError, localTarget, readStackOutputs, stageNamed, stageTarget, type OpsTarget, type StackOutputsReader } from './target';

export const USAGE = `refund-relay operator commands

  npm run ops -- <command> [--stage <${STAGE_NAMES.join('|')}>] [--json]

  timeline <orderId>       every event and state change of an order's refunds, and its ledger
  refund <refundId>        one refund: state, amounts, references, its timeline
  manual-review            refunds waiting for an operator, with the reason (reads the whole table),
                           Refundid RMAs Refundid has not answered in time, and the Ap21 orders and
                           returns the poller set aside, with reason and age
  retry-ap21 <ap21OrderId> read a set-aside Ap21 order again now and ingest its returns; what goes
                           through is released, what fails stays with its reason [--all: every one]
  redrive <refundId>       out of manual review with a fresh attempt budget, then wake the dispatcher
                           [--order <orderId>] when the refund id is on more than one order
                           [--reason <text>] why, for the timeline
  reroute <refundId> --reason <text>
                           a refund in manual review, any channel, to card reversal (an Apace one
                           cancels its offer first, or finds its payout failed); the reason goes to
                           the timeline [--order <orderId>]
  release <refundId> --reason <text>
                           a refund in manual review ends unpaid: its units are available again;
                           the reason goes to the timeline [--order <orderId>]; a card reversal
                           once sent to a provider is released only with --provider-checked, after
                           the provider's own record shows it did not pay
  waive-receipt <refundId> --reason <text>
                           a refund awaiting its return's receipt (AP21_PAY_ON_RECEIPT) goes to its
                           channel now, as the receipt would release it (card reversal, or the Apace
                           offer is created); the reason goes to the timeline [--order <orderId>]
  egress-ips --stage <s>   the IPs Ap21 and the providers must allowlist
  reconcile                compare our paid refunds with the providers' view and report drift
                           [--since <ISO time>] (default 7 days ago) [--limit <n>] (default 100)

Without --stage the commands act on the local runtime (npm start: DYNAMODB_ENDPOINT, default
http://127.0.0.1:4567, table refund-relay-local). With --stage they use your AWS credentials (the
default chain) and the stage's stack outputs. Exit codes: 0 done, 1 error, 2 reconcile found drift
or retry-ap21 left something set aside.`;

export interface OpsIo {
  out(text: string): void;
  err(text: string): void;
}

export interface OpsDeps {
  readonly env?: NodeJS.ProcessEnv;
  readonly readOutputs?: StackOutputsReader;
  readonly now?: () => Date;
}

const COMMANDS = ['timeline', 'refund', 'manual-review', 'redrive', 'reroute', 'release', 'waive-receipt', 'egress-ips', 'reconcile', 'retry-ap21'] as const;
type Command = (typeof COMMANDS)[number];
const DEFAULT_RECONCILE_DAYS = 7;
const DEFAULT_RECONCILE_LIMIT = 100;
const MAX_RECONCILE_LIMIT = 5_000;

function requireArgument(command: Command, value: string | undefined, what: string): string {
  if (!value) throw new OpsError(`${command} needs ${what}: npm run ops -- ${command} <${what}>`);
  return value;
}

function positiveLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_RECONCILE_LIMIT;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RECONCILE_LIMIT)
    throw new OpsError(`--limit must be a whole number from 1 to ${MAX_RECONCILE_LIMIT}`);
  return limit;
}

function sinceTime(text: string | undefined, now: Date): string {
  if (text === undefined) return new Date(now.getTime() - DEFAULT_RECONCILE_DAYS * 24 * 3600 * 1000).toISOString();
  const parsed = Date.parse(text);
  if (Number.isNaN(parsed)) throw new OpsError(`--since must be a date or time, e.g. 2026-03-01 or 2026-03-01T10:00:00Z`);
  return new Date(parsed).toISOString();
}

/** Runs one operator command; returns the process exit code. Never throws for an operator's mistake. */
export async function runOps(argv: readonly string[], io: OpsIo, deps: OpsDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const readOutputs = deps.readOutputs ?? readStackOutputs;
  const now = deps.now ?? (() => new Date());
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        stage: { type: 'string' },
        json: { type: 'boolean' },
        order: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        all: { type: 'boolean' },
        reason: { type: 'string' },
        'provider-checked': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [name, argument, ...extra] = positionals;
    if (values.help || !name) {
      io.out(USAGE);
      return name || values.help ? 0 : 1;
    }
    if (!(COMMANDS as readonly string[]).includes(name)) throw new OpsError(`unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    if (extra.length > 0) throw new OpsError(`unexpected arguments: ${extra.join(' ')}`);
    const command = name as Command;
    // The stage is checked before anything else, so a typo never reaches AWS.
    const stage = values.stage === undefined ? undefined : stageNamed(values.stage);

    let result: CommandResult;
    if (command === 'egress-ips') {
      if (!stage) throw new OpsError(`egress-ips needs --stage <${STAGE_NAMES.join('|')}>: locally, calls leave from this machine's own address`);
      result = await egressIps(stage, readOutputs);
    } else {
      const target: OpsTarget = stage ? await stageTarget(stage.stage, readOutputs, env) : localTarget(env);
      result = await runOnTarget(command, target, argument, values, now());
    }
    io.out(values.json ? JSON.stringify(result.json, null, 2) : result.text);
    return result.exitCode ?? 0;
  } catch (error) {
    if (error instanceof OpsError) {
      io.err(`error: ${error.message}`);
      return error.exitCode;
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
      return 1;
    }
    const { name, message } = error as Error;
    io.err(`error: ${name}: ${message}`);
    return 1;
  }
}

function runOnTarget(
  command: Exclude<Command, 'egress-ips'>,
  target: OpsTarget,
  argument: string | undefined,
  values: { order?: string; since?: string; limit?: string; all?: boolean; reason?: string; 'provider-checked'?: boolean },
  now: Date,
): Promise<CommandResult> {
  switch (command) {
    case 'timeline':
      return timeline(target, requireArgument(command, argument, 'orderId'));
    case 'refund':
      return showRefund(target, requireArgument(command, argument, 'refundId'));
    case 'manual-review':
      return manualReview(target, {}, now);
    case 'retry-ap21':
      if (values.all) {
        if (argument !== undefined) throw new OpsError('retry-ap21 takes an Ap21 order id or --all, not both');
        return retryAp21(target, { all: true });
      }
      return retryAp21(target, { orderId: requireArgument(command, argument, 'ap21OrderId'), all: false });
    case 'redrive':
      return redrive(target, requireArgument(command, argument, 'refundId'), {
        ...(values.order !== undefined && { orderId: values.order }),
        ...(values.reason?.trim() && { reason: values.reason }),
        operator: userInfo().username,
        now,
      });
    case 'reroute':
    case 'release':
      if (!values.reason?.trim()) throw new OpsError(`${command} needs a reason: npm run ops -- ${command} <refundId> --reason "<why>"`);
      return endRefundCommand(target, command, requireArgument(command, argument, 'refundId'), {
        ...(values.order !== undefined && { orderId: values.order }),
        operator: userInfo().username,
        reason: values.reason,
        providerChecked: values['provider-checked'] === true,
        now,
      });
    case 'waive-receipt':
      if (!values.reason?.trim()) throw new OpsError(`waive-receipt needs a reason: npm run ops -- waive-receipt <refundId> --reason "<why>"`);
      return waiveReceipt(target, requireArgument(command, argument, 'refundId'), {
        ...(values.order !== undefined && { orderId: values.order }),
        operator: userInfo().username,
        reason: values.reason,
        now,
      });
    case 'reconcile':
      return reconcile(target, { since: sinceTime(values.since, now), limit: positiveLimit(values.limit) });
  }
}
