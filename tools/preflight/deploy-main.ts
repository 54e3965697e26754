import '../ops/quiet-env';
import { runDeploy } from './deploy';

/** `npm run deploy -- --stage <s>`: the preflight, then cdk deploy (see DEPLOY_USAGE in ./deploy). */
runDeploy(process.argv.slice(2), { out: (text) => process.stdout.write(`${text}\n`), err: (text) => process.stderr.write(`${text}\n`) }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`deploy failed: ${error.message}\n`);
    process.exitCode = 1;
  },
);
