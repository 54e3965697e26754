import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderOpenApi } from './document';

/** `npm run openapi`: regenerates docs/openapi.json from the routes and their zod schemas. */
const OPENAPI_FILE = join(__dirname, '..', '..', 'docs', 'openapi.json');

writeFile(OPENAPI_FILE, renderOpenApi()).then(
  () => process.stdout.write(`wrote ${OPENAPI_FILE}\n`),
  (error: Error) => {
    process.stderr.write(`openapi failed: ${error.message}\n`);
    process.exitCode = 1;
  },
);
