import { App } from 'aws-cdk-lib';
import { defineApp } from '../lib/app';
import { StageConfigError } from '../lib/stage-validation';

try {
  defineApp(new App());
} catch (error) {
  // A configuration mistake deserves its message, not a stack trace.
  if (!(error instanceof StageConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
