/**
 * Redis for tests: the shared one (TABLEMQ_TEST_REDIS_URL, default redis://127.0.0.1:6379, which the
 * machine and CI run), and redis-server processes of a test's own, for faults (killed and restarted).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { connect, createServer } from "node:net";
import { waitUntil } from "./wait.js";

export const REDIS_URL = process.env.TABLEMQ_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Whether a Redis answers PING at host:port within `timeoutMs` (a raw socket: no client retries). */
export function answersPing(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

/** Whether the shared Redis answers. */
export function redisAnswers(): Promise<boolean> {
  const u = new URL(REDIS_URL);
  return answersPing(u.hostname, Number(u.port || 6379));
}

/** Whether a redis-server binary is there to start. */
export const hasRedisServer = (): boolean => spawnSync("redis-server", ["--version"]).status === 0;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A redis-server of the test's own on 127.0.0.1:`port`, nothing saved; resolves once it answers. */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  await waitUntil(() => answersPing("127.0.0.1", port, 200), `redis-server on port ${port} answers`, 5_000);
  return child;
}

export async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}
