/**
 * An error the caller caused, with the HTTP status that says so. The tenancy layer, the action store
 * and the API all throw subclasses; the API's error handler answers any of them with this status and
 * the message (SPEC §8: `{"status": false, "message"}`), and the CLI prints the message.
 */
export class StatusError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.statusCode = statusCode;
  }
}
