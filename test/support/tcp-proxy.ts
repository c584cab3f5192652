import net from "node:net";

/**
 * A TCP proxy on 127.0.0.1 between a client and a server (the server under test and the database, or a
 * subscriber and the server), so a test can cut the target off (`cut`: drop every connection and refuse new
 * ones), make it hang (`hang`: keep connections open but forward nothing), black-hole only the connections
 * open now (`stall`) and bring it back (`restore`), without touching the real target.
 */
export class TcpProxy {
  private mode: "forward" | "refuse" | "hang" = "forward";
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Sockets stall() left hanging: destroyed by close(). */
  private readonly stalled: net.Socket[] = [];

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy: { current?: TcpProxy } = {};
    const server = net.createServer((client) => proxy.current!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy.current = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy.current;
  }

  cut(): void {
    this.mode = "refuse";
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  hang(): void {
    this.mode = "hang";
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  /**
   * Black-holes the connections open now: nothing is forwarded either way, and one side closing is not passed
   * on to the other (as a dead path or a stateful firewall that forgot the flow); new connections are forwarded.
   */
  stall(): void {
    for (const pair of this.pairs) {
      for (const side of pair) {
        side.unpipe();
        side.pause();
        side.removeAllListeners("close");
        side.removeAllListeners("error");
        side.on("error", () => {});
        this.stalled.push(side);
      }
    }
    this.pairs.clear();
  }

  restore(): void {
    this.mode = "forward";
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  async close(): Promise<void> {
    this.cut();
    for (const side of this.stalled.splice(0)) side.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, host: string, port: number): void {
    if (this.mode === "refuse") {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.mode === "hang") {
      client.pause();
      upstream.pause();
    }
  }
}
