import '../ops/quiet-env';
import { runPreflight } from './preflight';

/** `npm run preflight -- --stage <s>`: see USAGE in ./preflight. */
runPreflight(process.argv.slice(2), { out: (text) => process.stdout.write(`${text}\n`), err: (text) => process.stderr.write(`${text}\n`) }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`preflight failed: ${error.message}\n`);
    process.exitCode = 1;
  },
);
