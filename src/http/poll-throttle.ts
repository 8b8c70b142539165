/**
 * Remembers, per job and client, when the client may poll again (the Retry-After it was
 * given, less a tolerance). A poll before that is "too early"; a client that waits as told is
 * never refused. In memory, per API process: a client switching processes is simply not throttled.
 */
export class PollThrottle {
  private readonly nextAllowed = new Map<string, number>();

  constructor(
    private readonly toleranceMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 100_000,
  ) {}

  /** Seconds the client still has to wait, or 0 when this poll is on time. */
  secondsTooEarly(jobId: string, client: string): number {
    const allowed = this.nextAllowed.get(`${jobId} ${client}`);
    if (allowed === undefined) return 0;
    const early = allowed - this.now();
    return early > 0 ? Math.ceil(early / 1000) : 0;
  }

  /** Records that the client was told to wait `retryAfterSeconds` before its next poll. */
  told(jobId: string, client: string, retryAfterSeconds: number): void {
    const key = `${jobId} ${client}`;
    this.nextAllowed.delete(key); // re-insert so the oldest entries come first when trimming
    this.nextAllowed.set(key, this.now() + retryAfterSeconds * 1000 - this.toleranceMs);
    if (this.nextAllowed.size > this.maxEntries) {
      const oldest = this.nextAllowed.keys().next().value;
      if (oldest !== undefined) this.nextAllowed.delete(oldest);
    }
  }

  /** The job ended or was deleted: no more limits for it. */
  forget(jobId: string, client: string): void {
    this.nextAllowed.delete(`${jobId} ${client}`);
  }
}
