import { runtime } from '../lambdas/functions/runtime';
import { runDemo } from './demo-flows';
import { applyLocalEnvironment, localSettings, simulatorUrl } from './environment';

/**
 * `npm run demo`: with `npm start` running, drives one refund through every channel against the
 * provider simulators and prints each step (the flows are in ./demo-flows): card reversals through
 * Addon Payments (EPG), PayPro and Optty, an Apace instant refund the simulated customer accepts, a
 * return pushed by Ap21, and a Refundid refund. Exits 1 if any step fails.
 */
const settings = localSettings();
applyLocalEnvironment(settings);
const api = process.env.PUBLIC_BASE_URL!;
const simulators = simulatorUrl(settings);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const health = await fetch(`${api}/health`).catch(() => undefined);
  if (!health?.ok) {
    say(`refund-relay is not answering at ${api}: start it first with \`npm start\` (same PORT/DYNAMODB_PORT/SIMULATOR_PORT).`);
    process.exit(1);
  }
  say(`refund-relay demo against ${api} and the simulators at ${simulators}`);
  const { failures } = await runDemo({ store: runtime().store, simulators, api, secretsFile: process.env.LOCAL_SECRETS_FILE!, say });
  say(failures ? `\n${failures} step(s) failed.` : '\nEvery channel refunded exactly once.');
  process.exit(failures ? 1 : 0);
}

main().catch((error: Error) => {
  say(`demo failed: ${error.message}`);
  process.exit(1);
});
