/**
 * The JSON schema of an action's `action` object (what it does), one branch per type. The admin API
 * validates with it and the console generates its forms from it, so the two cannot drift.
 */
export const actionTypeSchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  description: 'What the action does. `insert_bucket`: store the message in the publishing device\'s bucket (JSON records as they are, anything else as the `payload` variable); records get `metadata.mqtt_topic`.',
  properties: { type: { type: 'string', enum: ['insert_bucket'] } },
} as const;
