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

/** The topic the banner's commands publish to and its action stores from. */
const DEMO_TOPIC = 'sensors/t';

/**
 * The banner printed on first run: the credentials, then the seed's whole flow in three commands run
 * in order (test/metrics/first-run-banner.test.ts runs them): create the `insert_bucket` action that
 * stores the demo topic (publishing stores nothing by itself, SPEC §2), publish as the demo device
 * (QoS 1: acknowledged once the record is durable), read the record back with the device token.
 * Then where the message shows up live: the inspector stream and its REST history.
 */
export function firstRunBanner(credentials: FirstRunCredentials, ports: { mqtt: number; http: number }, host: string): string {
  const connectHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const http = `http://${connectHost}:${ports.http}`;
  const account = credentials.accountToken;
  const device = credentials.deviceToken;
  const action = JSON.stringify({ name: 'store sensors', trigger: { type: 'mqtt_topic', topics: ['sensors/#'] }, action: { type: 'insert_bucket' } });
  return [
    '',
    '  bucketmq first run: an account and a demo device were created. Keep these; they are not shown again.',
    '',
    `  account token:  ${account}`,
    `  device:         demo-device (${credentials.deviceId})`,
    `  device token:   ${device}`,
    '',
    '  1. Store what devices publish on sensors/# in their bucket (an insert_bucket action; account token):',
    `    curl -X POST -H 'Authorization: ${account}' -H 'Content-Type: application/json' -d '${action}' ${http}/actions`,
    '  2. Publish as the demo device:',
    `    mosquitto_pub -h ${connectHost} -p ${ports.mqtt} -u Token -P ${device} -q 1 -t ${DEMO_TOPIC} -m '{"variable":"temperature","value":21.5,"unit":"C"}'`,
    '  3. Read the record back (device data API, device token):',
    `    curl -H 'Authorization: ${device}' '${http}/data?variable=temperature&qty=1'`,
    '',
    '  See the connection and the message in the live inspector (account token):',
    `    stream:  ws://${connectHost}:${ports.http}/devices/${credentials.deviceId}/inspector/live?token=${account}`,
    `    history: curl -H 'Authorization: ${account}' ${http}/devices/${credentials.deviceId}/inspector`,
    '  Subscribe (same account, same topic space):',
    `    mosquitto_sub -h ${connectHost} -p ${ports.mqtt} -u Token -P ${device} -t '#' -v`,
    '',
  ].join('\n');
}
