import { spawn } from 'node:child_process';

export interface ScriptResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when the child could not start or was killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs a plain JavaScript program in a child Node process (`node -e script ...args`), killed after
 * `timeoutMs`. For work whose native side effects must stay out of this process: provider probes
 * (drivers that print to stderr or crash) and tile calibration (its peak RSS must be its own).
 */
export function runNodeScript(script: string, args: string[], timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ stdout, stderr: `${stderr}${e.message}`, code: null, signal: null });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code, signal });
    });
  });
}
