import '../ops/quiet-env';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { STAGE_NAMES } from '../../lib/stage-config';
import { OpsError, localTarget, stageNamed, stageTarget } from '../ops/target';
import { startConsole } from './server';

const USAGE = `refund-relay console

  npm run console -- [--stage <${STAGE_NAMES.join('|')}>] [--read-only] [--port <n>]

Serves the console on 127.0.0.1 only and prints its URL with a fresh session token: open that URL.
Without --stage it reads the local runtime (npm start); with --stage, the deployed stage with your
own AWS credentials, exactly as npm run ops does. --read-only: no actions.`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { stage: { type: 'string' }, 'read-only': { type: 'boolean' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = values.port === undefined ? 4020 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new OpsError('--port must be a port number');
  // The stage is checked before anything else, so a typo never reaches AWS.
  const target = values.stage === undefined ? localTarget() : await stageTarget(stageNamed(values.stage).stage);
  const readOnly = values['read-only'] === true;
  const started = Date.now();
  const running = await startConsole({ target, operator: userInfo().username, readOnly, port });
  process.stdout.write(
    [
      `refund-relay console on ${target.name} (table ${target.tableName})${readOnly ? ', read-only' : ''}, ready in ${Date.now() - started} ms`,
      `  open ${running.loginUrl}`,
      '  (the token in this URL is the session: anyone with it can use the console until you stop it with Ctrl-C)',
      '',
    ].join('\n'),
  );
  const stop = () => void running.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return 0;
}

main().catch((error: Error) => {
  process.stderr.write(`error: ${error.message}\n\n${USAGE}\n`);
  process.exit(1);
});
