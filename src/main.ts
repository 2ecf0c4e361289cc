#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { exitWith } from './cli/io.js';
import { registerManageCommands } from './cli/manage.js';
import { registerMountCommand } from './cli/mount.js';
import { registerSenderCommands } from './cli/sender.js';
import { UsageError } from './cli/senderCommon.js';

// `handoff status | head`: a closed pipe ends the command quietly, as with other Unix tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command();
program
  .name('handoff')
  .description('Handoff: a self-hosted file transfer and caching gateway')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });
// Sender commands skip loading the server stack (express, sqlite, ssh2...): they start in a fraction of the time.
const SENDER_COMMANDS = new Set(['login', 'send', 'add', 'status', 'ls', 'rm', 'recipients', 'log', 'close', 'delete', 'mount', '__uploader']);
if (!SENDER_COMMANDS.has(process.argv[2] ?? '')) (await import('./cli/server.js')).registerServerCommands(program);
registerSenderCommands(program);
registerManageCommands(program);
registerMountCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; everything else commander reports is a usage error.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof UsageError) {
    process.stderr.write(`handoff: ${err.message}\n`);
    process.exit(2);
  }
  exitWith(err);
});
