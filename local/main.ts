// `npm start`. The logger reads its level when its module loads, so the local default (warnings
// and errors only; export POWERTOOLS_LOG_LEVEL=INFO for every request) is set before anything loads it.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./run');
