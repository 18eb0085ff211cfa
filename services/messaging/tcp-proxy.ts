import net from "node:net";

/** A TCP proxy that tests use to simulate losing the broker connection. */
export interface TcpProxy {
  /** Local port forwarding to the target (127.0.0.1). */
  readonly port: number;
  /** Connections accepted and forwarded so far. */
  readonly accepted: number;
  /** Destroys every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let down = false;
  let accepted = 0;
  const track = (socket: net.Socket, peer: net.Socket) => {
    sockets.add(socket);
    socket.on("error", () => {}); // a reset is expected here; 'close' follows
    socket.on("close", () => {
      sockets.delete(socket);
      peer.destroy();
    });
  };
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = net.connect(targetPort, targetHost);
    track(client, upstream);
    track(upstream, client);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const cut = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    cut,
    restore: () => {
      down = false;
    },
    close: () => {
      cut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
