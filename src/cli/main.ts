import { Command, CommanderError } from 'commander';
import { main as serve } from '../server.ts';
import { StatusError } from '../status-error.ts';
import { CliError, registryCommands, type CliOutput } from './registry-commands.ts';

const SUBCOMMANDS = new Set(['account', 'device', 'token']);

/**
 * `bucketmq`: with no subcommand (or `serve`) it runs the server with the server's flags; `account`,
 * `device` and `token` manage the registry. Returns the exit code for subcommands.
 */
export async function runCli(argv: readonly string[], env: Record<string, string | undefined>, output: CliOutput = stdio): Promise<number> {
  const first = argv[0];
  if (first === undefined || !SUBCOMMANDS.has(first)) {
    await serve(first === 'serve' ? argv.slice(1) : argv, env);
    return 0;
  }
  const program = new Command('bucketmq')
    .exitOverride()
    .configureOutput({ writeOut: (s) => output.out(s.trimEnd()), writeErr: (s) => output.err(s.trimEnd()) });
  registryCommands(program, output);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof CliError || error instanceof StatusError) {
      output.err(`bucketmq: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

const stdio: CliOutput = {
  out: (text) => process.stdout.write(text + '\n'),
  err: (text) => process.stderr.write(text + '\n'),
};
