/**
 * Loopback ports for the servers the real tests publish. Fixed ports failed in CI ("bind: address
 * already in use" on 127.0.0.1:35432 for every start of one test file), so each test file takes
 * ports that are free when it starts. They are taken below the kernel's ephemeral range, so an
 * outgoing connection's source port can never take one between the choice and Docker's bind.
 */
import { execFileSync } from "child_process";
import * as dgram from "dgram";
import * as fs from "fs";
import * as net from "net";

const LOWEST = 20000;

function ephemeralRangeStart(): number {
  try {
    const [low] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 32768;
  } catch {
    return 32768;
  }
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number, address = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, address, () => socket.close(() => resolve(true)));
  });
}

/**
 * Fails, naming who holds it, unless UDP `port` is free on every address of this host: a server
 * in the host's network (`udpServer.network: host`) binds a fixed port there, which no test may
 * choose (`freeLoopbackPort` takes ports from 20000 up).
 */
export async function requireHostUdpPortFree(port: number): Promise<void> {
  if (!(await udpFree(port, "0.0.0.0"))) {
    throw new Error(
      `UDP port ${port} of this host is taken, and the UDP server in the host's network must bind it: ${listenersOn(port)}`,
    );
  }
}

/** A port on 127.0.0.1 that nothing holds now, for `protocol`, and not one of `taken`. */
export async function freeLoopbackPort(protocol: "tcp" | "udp", taken: number[] = []): Promise<number> {
  const end = ephemeralRangeStart();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (end - LOWEST));
    if (taken.includes(port)) continue;
    if (await (protocol === "tcp" ? tcpFree(port) : udpFree(port))) return port;
  }
  throw new Error(`no free ${protocol} port on 127.0.0.1 between ${LOWEST} and ${end} after 200 tries`);
}

/** Who listens on `port` (from `ss`), for an error message when a bind fails anyway. */
export function listenersOn(port: number): string {
  try {
    const lines = execFileSync("ss", ["-Hltunp"], { encoding: "utf8" }).split("\n");
    return lines.filter((line) => new RegExp(`:${port}\\s`).test(line)).join("\n") || "(ss shows no listener now)";
  } catch (e) {
    return `(ss failed: ${(e as Error).message})`;
  }
}
