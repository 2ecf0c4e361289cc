#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerServerCommands } from './cli/server.js';
import { exitWith } from './cli/io.js';

const program = new Command();
program
  .name('handoff')
  .description('Handoff: a self-hosted file transfer and caching gateway')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });
registerServerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; everything else commander reports is a usage error.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  exitWith(err);
});
