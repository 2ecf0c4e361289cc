/** Why one attempt ended: the uploader retries `transient` ones with backoff and fails the rest with `message`. */
export class AttemptError extends Error {
  constructor(message: string, readonly transient: boolean, readonly status: number) {
    super(message);
  }
}
