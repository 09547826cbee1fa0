/** A host as a URL needs it: an IPv6 address in brackets (the config stores it without). */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * Where the operator reaches the API. A wildcard publish address is not an address to call:
 * use the Docker host's name for an `ssh://` or `tcp://` engine, and loopback for the local one.
 */
export function apiUrlFor(publishAddress: string, port: number, dockerHost?: string): string {
  const remoteHost = dockerHost && /^(ssh|tcp):\/\//.test(dockerHost) ? new URL(dockerHost).hostname : undefined;
  const wildcard = ["0.0.0.0", "::", "[::]"].includes(publishAddress);
  const host = wildcard ? (remoteHost ?? "127.0.0.1") : publishAddress;
  return `http://${urlHost(host)}:${port}`;
}
