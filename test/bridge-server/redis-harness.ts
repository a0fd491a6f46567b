/**
 * A real redis-server for the queue tests, on a free loopback port, with no persistence, in its
 * own temporary folder; and `upbridge worker` child processes. No mocks of Redis or BullMQ.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { promises as fs, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../bridge-server/free-port';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'upbridge.js');

/** Fails with a message saying what to install, rather than a connection error later. */
export function redisServerPath(): string {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error('redis-server is not installed: the queue tests (issue 11) run a real Redis. Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis); .ci/run installs it.');
  }
  return 'redis-server';
}

export interface RedisServer {
  port: number;
  /** With TLS: the CA that signed the server's certificate (for NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /** The server process (changes on restart). */
  readonly pid: number;
  url: string;
  stop(): Promise<void>;
  /** Kills the server (Redis down); `restart()` brings it back. */
  kill(): Promise<void>;
  /** Starts it again on the same port (a Redis restart), empty. */
  restart(): Promise<void>;
}

function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** A CA and a server certificate for 127.0.0.1, made with openssl in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
  const openssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`openssl ${args[0]} failed (the TLS test needs openssl): ${r.error?.message ?? r.stderr}`);
  };
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=upbridge test CA']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return files;
}

export async function startRedis(options: { password?: string; tls?: boolean } = {}): Promise<RedisServer> {
  const bin = redisServerPath();
  const port = await freePort();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-redis-'));
  const tls = options.tls ? makeCertificates(dir) : undefined;
  let child: ChildProcess | undefined;
  const start = async () => {
    const listen = tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no'] : ['--port', String(port)];
    const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.password ? ['--requirepass', options.password] : [])];
    child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForPort(port);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    url: `${tls ? 'rediss' : 'redis'}://${options.password ? `:${encodeURIComponent(options.password)}@` : ''}127.0.0.1:${port}`,
    ...(tls ? { caFile: tls.ca } : {}),
    async stop() {
      await stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
    kill: stop,
    async restart() {
      await stop();
      await start();
    },
  };
}

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  log: () => string;
  /** Resolves when the log matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startWorker(url: string, store: string, name: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--store', store, '--name', name, ...extra], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const waitForLog = (pattern: RegExp, timeoutMs = 30000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (pattern.test(text)) {
          clearInterval(timer);
          resolve();
        } else if (child.exitCode !== null || Date.now() > deadline) {
          clearInterval(timer);
          reject(new Error(`worker ${name} ${child.exitCode !== null ? `exited (${child.exitCode})` : 'timed out'} before logging ${pattern}; its log:\n${text}`));
        }
      }, 20);
      const deadline = Date.now() + timeoutMs;
    });
  await waitForLog(/taking jobs from/);
  return {
    name,
    child,
    log: () => text,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

/** TCP ports a process listens on (Linux: its socket inodes matched against /proc/net/tcp{,6} in state LISTEN). */
export async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`)) {
    const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fs.readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      // cols[1] local address:port (hex), cols[3] state (0A = LISTEN), cols[9] inode
      if (cols[3] === '0A' && inodes.has(cols[9])) ports.push(parseInt(cols[1].split(':').pop()!, 16));
    }
  }
  return ports;
}
