/**
 * The schedules admin API called as a patient client calls it. The API answers 503 with
 * Retry-After when Temporal takes longer than its deadline (a loaded machine), so reads are asked
 * again; a trigger whose answer was a 503 may still have been taken, so its run is looked for
 * before the trigger is asked again.
 */
import { waitFor } from './wait';

export interface ScheduleRunView {
  startedAt: string;
  state: string;
}

export interface ScheduleAdmin {
  call(method: string, path: string, body?: unknown): Promise<Response>;
  /** GET /admin/schedules/:id (200), retried while it answers 503. */
  read<T extends { running: string[]; runs?: ScheduleRunView[] }>(id: string): Promise<T>;
  /** POST /admin/schedules/:id/trigger with no run going; resolves once Temporal took the trigger. */
  trigger(id: string): Promise<void>;
}

/** `baseUrl` is the API's `/admin/schedules` URL. */
export function scheduleAdmin(baseUrl: string): ScheduleAdmin {
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${baseUrl}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  const retryLater = async (res: Response) => {
    await new Promise((resolve) => setTimeout(resolve, Number(res.headers.get('retry-after') ?? 1) * 1000));
  };

  async function read<T extends { running: string[]; runs?: ScheduleRunView[] }>(id: string): Promise<T> {
    for (;;) {
      const res = await call('GET', `/${id}`);
      if (res.status === 200) return (await res.json()) as T;
      if (res.status !== 503) throw new Error(`GET schedule ${id} answered ${res.status}: ${await res.text()}`);
      await retryLater(res);
    }
  }

  async function trigger(id: string): Promise<void> {
    const before = await read(id);
    if (before.running.length > 0) throw new Error(`schedule ${id} has a run going; wait for it before a trigger`);
    const newestBefore = before.runs?.[0]?.startedAt;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const res = await call('POST', `/${id}/trigger`);
      if (res.status === 202) return;
      if (res.status !== 503) throw new Error(`trigger of ${id} answered ${res.status}: ${await res.text()}`);
      await retryLater(res);
      const taken = await waitFor(async () => {
        const now = await read(id);
        return now.running.length > 0 || now.runs?.[0]?.startedAt !== newestBefore;
      }, 15_000, 'a run of the trigger answered 503').then(() => true, () => false);
      if (taken) return;
    }
    throw new Error(`trigger of ${id} answered 503 five times and started no run`);
  }

  return { call, read, trigger };
}
