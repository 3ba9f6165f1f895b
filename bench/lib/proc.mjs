// Process plumbing for the benchmark driver: spawn a Node script pinned to one core (taskset when present) with an
// IPC channel, request/reply over IPC with a timeout, and CPU / memory readings from /proc.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const HAS_TASKSET = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Every child this driver started, so an exit path can stop them by pid. */
const children = new Set();

/**
 * Starts `node [nodeArgs] script [args]` pinned to `core` and waits for its `{ ready }` message.
 * @returns {Promise<{ pid: number, ready: any, request: (cmd: string, extra?: object, timeoutMs?: number) => Promise<any>, stop: () => Promise<void> }>}
 */
export async function startNode({
  core,
  script,
  args = [],
  nodeArgs = [],
  env = {},
  nice = 0,
  readyTimeoutMs = 30_000,
}) {
  let cmdLine = [process.execPath, ...nodeArgs, script, ...args];
  if (HAS_TASKSET && core !== null) cmdLine = ['taskset', '-c', String(core), ...cmdLine];
  // taskset execs the next program, so the child's pid is the Node process's pid.
  const [cmd, ...cmdArgs] = cmdLine;
  // With `nice`, the child gets its own session (detached), hence its own scheduler autogroup whose nice value we
  // set: with autogroups a plain `nice` only ranks processes within one session, not against other sessions.
  const child = spawn(cmd, cmdArgs, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
    detached: nice !== 0,
  });
  children.add(child);
  if (nice !== 0) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, String(nice));
    } catch {
      try {
        spawnSync('renice', ['-n', String(nice), '-p', String(child.pid)]);
      } catch {
        /* best effort */
      }
    }
  }
  let nextId = 1;
  const pending = new Map();
  let exited = false;
  child.on('exit', () => {
    exited = true;
    children.delete(child);
    for (const { reject, timer } of pending.values()) {
      clearTimeout(timer);
      reject(new Error(`${script} exited`));
    }
    pending.clear();
  });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script}: not ready in ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    child.on('message', (msg) => {
      if (msg?.ready) {
        clearTimeout(timer);
        resolve(msg);
        return;
      }
      const entry = pending.get(msg?.reply);
      if (entry !== undefined) {
        pending.delete(msg.reply);
        clearTimeout(entry.timer);
        entry.resolve(msg);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before ready`));
    });
  });
  const request = (cmdName, extra = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(new Error(`${script} has exited`));
        return;
      }
      const id = nextId;
      nextId += 1;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${script}: '${cmdName}' timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      child.send({ cmd: cmdName, id, ...extra });
    });
  const stop = async () => {
    if (exited) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    try {
      child.send({ cmd: 'exit' });
    } catch {
      /* channel already closed */
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };
  return { pid: child.pid, ready, request, stop };
}

/** Kills every child still running (exit path of the driver). */
export function killAll() {
  for (const child of children) child.kill('SIGKILL');
}

/** CPU seconds (user, system) of `pid` from /proc/<pid>/stat. */
export function cpuTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
}

/** Current and peak resident set size of `pid` in bytes, from /proc/<pid>/status. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Machine description for the report header. */
export function machine() {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    /* not Linux */
  }
  const nproc = Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || 0;
  return { cpu, nproc, node: process.version, taskset: HAS_TASKSET };
}

/** Busy and total jiffies per CPU from /proc/stat: `[{ busy, total }]` indexed by core. */
export function coreTimes() {
  const out = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].split(' ').map(Number);
    // user nice system idle iowait irq softirq steal: process time shows up in user/nice/system
    const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0);
    out[Number(m[1])] = { busy: busy / CLK_TCK, softirq: ((v[5] ?? 0) + (v[6] ?? 0)) / CLK_TCK };
  }
  return out;
}
