import type { Registry } from './registry.ts';

export interface FirstRunCredentials {
  accountId: string;
  accountToken: string;
  deviceId: string;
  deviceToken: string;
}

/**
 * On an empty registry, creates an account and a demo device so that a newcomer has working
 * credentials (issue 4 / SPEC §9). Returns them once; on later runs there is nothing to return and
 * nothing secret is printed.
 */
export function ensureFirstRun(registry: Registry, plan: string): FirstRunCredentials | null {
  if (registry.accounts().length > 0) return null;
  const { account, token } = registry.createAccount({ name: 'My account', plan });
  const device = registry.createDevice(account.id, { name: 'demo-device', type: 'immutable' });
  return { accountId: account.id, accountToken: token, deviceId: device.device.id, deviceToken: device.token };
}

/** The banner printed on first run: the account token and a ready-to-paste mosquitto_pub command. */
export function firstRunBanner(credentials: FirstRunCredentials, ports: { mqtt: number; http: number }, host: string): string {
  const connectHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return [
    '',
    '  bucketmq first run: an account and a demo device were created. Keep these; they are not shown again.',
    '',
    `  account token:  ${credentials.accountToken}`,
    `  device:         demo-device (${credentials.deviceId})`,
    `  device token:   ${credentials.deviceToken}`,
    '',
    '  Publish as the demo device:',
    `    mosquitto_pub -h ${connectHost} -p ${ports.mqtt} -u Token -P ${credentials.deviceToken} -t sensors/t -m '{"variable":"temperature","value":21.5,"unit":"C"}'`,
    '  Subscribe (same account, same topic space):',
    `    mosquitto_sub -h ${connectHost} -p ${ports.mqtt} -u Token -P ${credentials.deviceToken} -t '#' -v`,
    '  Admin API (account token):',
    `    curl -H 'Authorization: ${credentials.accountToken}' http://${connectHost}:${ports.http}/devices`,
    '',
  ].join('\n');
}
