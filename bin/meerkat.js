#!/usr/bin/env node
// The `meerkat` command. The server is TypeScript run through tsx: register its loader,
// then hand over to src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const status = await main(process.argv.slice(2));
if (status !== 0) process.exit(status);
