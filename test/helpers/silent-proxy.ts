/**
 * A TCP proxy on loopback between the service and PostgreSQL that can go silent: while
 * silent it accepts connections and keeps every socket open but forwards nothing either
 * way (a network partition, not a refusal); resumed, it delivers what it held back, as a
 * healed network would.
 */
import net from "node:net";

export interface SilentProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  silence(): void;
  resume(): void;
  /** Connections the service (the proxy's client side) has closed so far. */
  closedByClient(): number;
  /** Whether the service has closed its connection from local port `port`. */
  hasClosed(port: number): boolean;
  close(): Promise<void>;
}

export async function startSilentProxy(target: { host: string; port: number }): Promise<SilentProxy> {
  let silent = false;
  let closedByClient = 0;
  const closedPorts = new Set<number>();
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const forward = (to: net.Socket, chunk: Buffer) => {
    if (silent) held.push(() => to.write(chunk));
    else to.write(chunk);
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.on("data", (chunk) => forward(upstream, chunk));
    upstream.on("data", (chunk) => forward(client, chunk));
    const clientPort = client.remotePort!;
    client.on("close", () => {
      closedByClient++;
      closedPorts.add(clientPort);
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on("close", () => {
      client.destroy();
      sockets.delete(upstream);
    });
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    silence() {
      silent = true;
    },
    resume() {
      silent = false;
      for (const deliver of held.splice(0)) deliver();
    },
    closedByClient: () => closedByClient,
    hasClosed: (port) => closedPorts.has(port),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
