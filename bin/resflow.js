#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the `prepare` script).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
    console.error('resflow: the build is missing; run `npm install` (or `npm run build`) in the resflow folder first.');
    process.exit(1);
  }
  console.error(err);
  process.exit(1);
});
