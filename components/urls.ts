/** A host as a URL needs it: an IPv6 address in brackets (the config stores it without). */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
