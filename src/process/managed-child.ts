import { spawn, type ChildProcess } from 'node:child_process';

export interface ManagedChildOptions {
  name: string;
  command: string;
  args: string[];
  /** Lines of the child's output kept to explain a failed start. */
  keepOutputLines?: number;
}

/**
 * A child process we started and must stop: only this PID is signalled, and it is killed when
 * our own process exits, so no server outlives the process (or test run) that launched it.
 */
export class ManagedChild {
  private readonly child: ChildProcess;
  private readonly recentOutput: string[] = [];
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  constructor(private readonly options: ManagedChildOptions) {
    this.child = spawn(options.command, options.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = options.keepOutputLines ?? 40;
    const remember = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.recentOutput.push(line);
        if (this.recentOutput.length > keep) this.recentOutput.shift();
      }
    };
    this.child.stdout?.on('data', remember);
    this.child.stderr?.on('data', remember);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        this.exitCode = code;
        process.removeListener('exit', this.killOnExit);
        resolve(code);
      });
      this.child.on('error', (err) => {
        this.recentOutput.push(String(err));
        this.exitCode = null;
        process.removeListener('exit', this.killOnExit);
        resolve(null);
      });
    });
    process.on('exit', this.killOnExit);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exitCode !== undefined;
  }

  /** The last lines the child printed, for error messages. */
  get output(): string {
    return this.recentOutput.join('\n');
  }

  /** Polls `probe` until it resolves true; fails early if the child exits. */
  async waitUntilReady(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.hasExited) {
        throw new Error(`${this.options.name} exited during start (code ${this.exitCode}):\n${this.output}`);
      }
      if (await probe().catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await this.stop();
    throw new Error(`${this.options.name} did not become ready within ${timeoutMs} ms:\n${this.output}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.hasExited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
