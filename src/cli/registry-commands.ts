import path from 'node:path';
import { Command, Option } from 'commander';
import { DATABASE_FILE } from '../server.ts';
import { openDatabase } from '../storage/sqlite-database.ts';
import type { Account } from '../tenancy/model.ts';
import { Registry } from '../tenancy/registry.ts';

/** Where the CLI prints; injected so tests capture it. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

/** An error the CLI reports as one line and exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/**
 * `bucketmq account|device|token ...`: the registry from the command line, on the same SQLite
 * database as the server (WAL lets both use it at once). Revocations made here reach a running
 * server through the registry's revocation counter, which it polls.
 */
export function registryCommands(program: Command, output: CliOutput): void {
  const withRegistry = <T>(opts: { dataDir: string }, run: (registry: Registry) => T): T => {
    const db = openDatabase(path.resolve(opts.dataDir, DATABASE_FILE));
    try {
      const registry = new Registry(db);
      registry.installPlans();
      return run(registry);
    } finally {
      db.close();
    }
  };
  const print = (opts: { json?: boolean }, value: unknown, text: () => string): void => {
    output.out(opts.json ? JSON.stringify(value, null, 2) : text());
  };
  const dataDir = (): Option => new Option('--data-dir <dir>', 'directory of bucketmq.db').env('BUCKETMQ_DATA_DIR').default('./data');
  const json = (): Option => new Option('--json', 'print JSON');
  const accountOption = (): Option => new Option('--account <id|name>', 'account (default: the only account)');

  const account = program.command('account').description('accounts and their tokens');
  account
    .command('list')
    .description('list accounts')
    .addOption(dataDir())
    .addOption(json())
    .action((opts: { dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const accounts = r.accounts();
        print(opts, accounts, () => table(accounts.map((a) => [a.id, a.name, a.plan, a.created_at]), ['id', 'name', 'plan', 'created']));
      });
    });
  account
    .command('create')
    .description('create an account; prints its account token once')
    .requiredOption('--name <name>', 'account name')
    .option('--plan <plan>', 'plan (free, starter, scale, ...)')
    .addOption(dataDir())
    .addOption(json())
    .action((opts: { name: string; plan?: string; dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const created = r.createAccount({ name: opts.name, plan: opts.plan });
        print(opts, created, () => `account ${created.account.id} (${created.account.name}, plan ${created.account.plan})\naccount token: ${created.token}`);
      });
    });

  const device = program.command('device').description('devices');
  device
    .command('list')
    .description("list an account's devices")
    .addOption(accountOption())
    .option('--name <text>', 'name contains')
    .addOption(dataDir())
    .addOption(json())
    .action((opts: { account?: string; name?: string; dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const devices = r.devices(resolveAccount(r, opts.account).id, { name: opts.name, amount: 10_000 });
        print(opts, devices, () => table(devices.map((d) => [d.id, d.name, d.type, d.active ? 'yes' : 'no', d.last_input ?? '-']), ['id', 'name', 'type', 'active', 'last input']));
      });
    });
  device
    .command('create')
    .description('create a device; prints its first device token once')
    .requiredOption('--name <name>', 'device name')
    .addOption(new Option('--type <type>', 'bucket type').choices(['immutable', 'mutable']).default('immutable'))
    .option('--tag <key=value...>', 'tags')
    .addOption(accountOption())
    .addOption(dataDir())
    .addOption(json())
    .action((opts: { name: string; type: 'immutable' | 'mutable'; tag?: string[]; account?: string; dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const tags = (opts.tag ?? []).map(parseTag);
        const created = r.createDevice(resolveAccount(r, opts.account).id, { name: opts.name, type: opts.type, tags });
        print(opts, { device: created.device, token: created.token }, () => `device ${created.device.id} (${created.device.name})\ndevice token: ${created.token}`);
      });
    });
  device
    .command('delete <deviceId>')
    .description('delete a device (its sessions are cut)')
    .addOption(accountOption())
    .addOption(dataDir())
    .action((deviceId: string, opts: { account?: string; dataDir: string }) => {
      withRegistry(opts, (r) => r.deleteDevice(resolveAccount(r, opts.account).id, deviceId));
      output.out(`deleted device ${deviceId}`);
    });
  device
    .command('deactivate <deviceId>')
    .description('deactivate a device (its sessions are cut, its tokens stop working)')
    .addOption(accountOption())
    .addOption(dataDir())
    .action((deviceId: string, opts: { account?: string; dataDir: string }) => {
      withRegistry(opts, (r) => r.updateDevice(resolveAccount(r, opts.account).id, deviceId, { active: false }));
      output.out(`deactivated device ${deviceId}`);
    });

  const token = program.command('token').description('device tokens');
  token
    .command('list <deviceId>')
    .description("list a device's tokens (never the secrets)")
    .addOption(accountOption())
    .addOption(dataDir())
    .addOption(json())
    .action((deviceId: string, opts: { account?: string; dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const tokens = r.deviceTokens(resolveAccount(r, opts.account).id, deviceId);
        print(opts, tokens, () => table(tokens.map((t) => [t.id, t.name, t.permission, t.expire_time, t.serie_number ?? '-']), ['id', 'name', 'permission', 'expires', 'serie']));
      });
    });
  token
    .command('create <deviceId>')
    .description('create a device token; prints it once')
    .requiredOption('--name <name>', 'token name')
    .addOption(new Option('--permission <permission>', 'what the token may do').choices(['full', 'read', 'write']).default('full'))
    .option('--expire <when>', '"never", an ISO date, or a span like "3 hours"', 'never')
    .option('--serie <number>', 'serial number')
    .addOption(accountOption())
    .addOption(dataDir())
    .addOption(json())
    .action((deviceId: string, opts: { name: string; permission: 'full' | 'read' | 'write'; expire: string; serie?: string; account?: string; dataDir: string; json?: boolean }) => {
      withRegistry(opts, (r) => {
        const created = r.createDeviceToken(resolveAccount(r, opts.account).id, deviceId, {
          name: opts.name,
          permission: opts.permission,
          expire_time: opts.expire,
          serie_number: opts.serie ?? null,
        });
        print(opts, created, () => `token ${created.info.id} (${created.info.permission}, expires ${created.info.expire_time})\ndevice token: ${created.token}`);
      });
    });
  token
    .command('delete <deviceId> <tokenId>')
    .description('revoke a device token (its sessions are cut)')
    .addOption(accountOption())
    .addOption(dataDir())
    .action((deviceId: string, tokenId: string, opts: { account?: string; dataDir: string }) => {
      withRegistry(opts, (r) => r.deleteDeviceToken(resolveAccount(r, opts.account).id, deviceId, tokenId));
      output.out(`revoked token ${tokenId}`);
    });
}

function resolveAccount(registry: Registry, wanted: string | undefined): Account {
  if (wanted !== undefined) {
    const found = registry.account(wanted) ?? registry.accountByName(wanted);
    if (found === null) throw new CliError(`--account: no account with id or name "${wanted}"`);
    return found;
  }
  const accounts = registry.accounts();
  if (accounts.length === 1) return accounts[0]!;
  if (accounts.length === 0) throw new CliError('no account yet: start the server once (npm start) or run `bucketmq account create --name NAME`');
  throw new CliError(`--account is needed: there are ${accounts.length} accounts (${accounts.map((a) => a.name).join(', ')})`);
}

function parseTag(text: string): { key: string; value: string } {
  const at = text.indexOf('=');
  if (at <= 0) throw new CliError(`--tag: "${text}" is not key=value`);
  return { key: text.slice(0, at), value: text.slice(at + 1) };
}

function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
