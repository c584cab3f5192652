import { connect } from "node:net";
import { Unavailable } from "./types.js";

/**
 * TCP reachability check before a client library connects: an absent server is reported at once as
 * Unavailable (so the runner skips that system) instead of being retried by the client forever.
 */
export async function probe(system: string, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    const fail = (why: string) => {
      socket.destroy();
      reject(new Unavailable(`${system}: nothing answers on ${host}:${port} (${why})`));
    };
    socket.setTimeout(3_000, () => fail("timed out"));
    socket.once("error", (err) => fail(err.message));
    socket.once("connect", () => {
      socket.end();
      resolve();
    });
  });
}
