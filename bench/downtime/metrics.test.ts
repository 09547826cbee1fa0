/**
 * The downtime benchmark's definitions (metrics.ts) and its literal runbook's run config
 * (runconfig.ts), on recorded shapes: no Docker needed.
 */
import { describe, expect, test } from "vitest";
import {
  downtimeOf,
  firstOkAfter,
  longestOutage,
  median,
  outages,
  parseSteps,
  unhealthyMs,
  type ContainerEvent,
} from "./metrics";
import { runConfigOf, type ContainerInspect, type ImageInspect } from "./runconfig";

const samples = (pattern: string, step = 100) => [...pattern].map((c, i) => ({ t: 1000 + i * step, ok: c === "+" }));

describe("API downtime from the probe's samples", () => {
  test("the longest gap runs from the first failed request to the first 200 after it", () => {
    expect(longestOutage(samples("++-++----+-+"))).toEqual({ start: 1500, end: 1900, ms: 400 });
  });

  test("a gap still open at the end lasts until the last sample", () => {
    expect(longestOutage(samples("+++---"))).toEqual({ start: 1300, end: 1500, ms: 200 });
  });

  test("no failed request: no outage", () => {
    expect(longestOutage(samples("+++"))).toBeUndefined();
  });

  test("of two equally long gaps, the longest is the first", () => {
    expect(longestOutage(samples("+--+--+"))).toEqual({ start: 1100, end: 1300, ms: 200 });
  });

  test("every gap, in order, and the unhealthy time is their sum", () => {
    expect(outages(samples("+-++---+--"))).toEqual([
      { start: 1100, end: 1200, ms: 100 },
      { start: 1400, end: 1700, ms: 300 },
      { start: 1800, end: 1900, ms: 100 },
    ]);
    expect(unhealthyMs(samples("+-++---+--"))).toBe(500);
    expect(unhealthyMs(samples("+++"))).toBe(0);
    expect(outages([])).toEqual([]);
  });

  test("the new API's boot ends at its first 200 at or after its start", () => {
    expect(firstOkAfter(samples("+---++"), 1150)).toBe(1400);
    expect(firstOkAfter(samples("+---"), 1150)).toBeUndefined();
  });
});

describe("a follower's downtime from Docker's events", () => {
  const events: ContainerEvent[] = [
    { time: 50, action: "kill", name: "bdt-beat" }, // before the upgrade: ignored
    { time: 60, action: "start", name: "bdt-beat" },
    { time: 100, action: "kill", name: "bdt-beat" },
    { time: 150, action: "die", name: "bdt-beat" },
    { time: 400, action: "destroy", name: "bdt-beat" },
    { time: 900, action: "start", name: "bdt-beat" },
    { time: 950, action: "kill", name: "bdt-beat" },
    { time: 200, action: "die", name: "bdt-poster" },
  ];

  test("from its first stop signal after the upgrade started to its next start, the replacement's included", () => {
    expect(downtimeOf(events, "bdt-beat", 80)).toEqual({ start: 100, end: 900, ms: 800 });
  });

  test("a container that stopped and never started again has no end", () => {
    expect(downtimeOf(events, "bdt-poster", 80)).toEqual({ start: 200, end: undefined, ms: undefined });
  });

  test("a container that never stopped has no downtime", () => {
    expect(downtimeOf(events, "bdt-udp-server", 80)).toBeUndefined();
  });
});

test("the literal runbook's step lines are read, other output skipped", () => {
  const out = "STEP backup 10 20\nUsing default tag\nabc: Pull complete\nSTEP pull 20 35\n";
  expect(parseSteps(out)).toEqual([
    { name: "backup", start: 10, end: 20 },
    { name: "pull", start: 20, end: 35 },
  ]);
});

test("median of an odd and an even count", () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
});

describe("the literal runbook's run config, from docker inspect", () => {
  const image: ImageInspect = {
    Config: {
      Env: ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
      Cmd: ["gunicorn", "utilitarian.wsgi:application"],
      Labels: { "io.utilitarian.standin.hash": "abc", "io.utilitarian.version": "1.0.0" },
    },
  };
  const container: ContainerInspect = {
    Id: "0123456789abcdef",
    Name: "/bdt-api",
    Config: {
      Image: "127.0.0.1:5000/utilitarian-standin/utilitarian:1.0.0",
      Env: ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "SECRET_KEY=s3cr3t value", "ALLOWED_HOSTS=127.0.0.1,api"],
      Cmd: ["gunicorn", "utilitarian.wsgi:application"],
      Labels: {
        "io.utilitarian.standin.hash": "abc",
        "io.utilitarian.version": "1.0.0",
        "io.utilitarian.stack": "bdt",
        "io.utilitarian.role": "api",
      },
      StopTimeout: 10,
      Healthcheck: {
        Test: ["CMD", "python", "-c", "import x; x.y('http://127.0.0.1:8000/_health/')"],
        Interval: 15e9,
        Timeout: 6e9,
        StartPeriod: 90e9,
        Retries: 3,
      },
    },
    HostConfig: {
      RestartPolicy: { Name: "unless-stopped" },
      PortBindings: { "8000/tcp": [{ HostIp: "127.0.0.1", HostPort: "23456" }] },
      LogConfig: { Type: "json-file", Config: { "max-size": "50m", "max-file": "5" } },
      Binds: null,
    },
    Mounts: [],
    NetworkSettings: { Networks: { "bdt-net": { Aliases: ["api", "0123456789ab"] } } },
  };

  test("carries what the container added to its image, with the new version's label", () => {
    expect(runConfigOf(container, image, "1.1.0")).toEqual({
      args: [
        "--name",
        "bdt-api",
        "--restart",
        "unless-stopped",
        "--label",
        "io.utilitarian.role=api",
        "--label",
        "io.utilitarian.stack=bdt",
        "--label",
        "io.utilitarian.version=1.1.0",
        "--network",
        "bdt-net",
        "--network-alias",
        "api",
        "-p",
        "127.0.0.1:23456:8000/tcp",
        "--stop-timeout",
        "10",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-file=5",
        "--log-opt",
        "max-size=50m",
        "--health-cmd",
        "python -c 'import x; x.y('\\''http://127.0.0.1:8000/_health/'\\'')'",
        "--health-interval",
        "15s",
        "--health-timeout",
        "6s",
        "--health-start-period",
        "90s",
        "--health-retries",
        "3",
      ],
      env: ["SECRET_KEY=s3cr3t value", "ALLOWED_HOSTS=127.0.0.1,api"],
      cmd: [],
    });
  });

  test("a command of its own is kept", () => {
    const worker = { ...container, Config: { ...container.Config, Cmd: ["celery", "-A", "utilitarian", "worker"] } };
    expect(runConfigOf(worker, image, "1.1.0").cmd).toEqual(["celery", "-A", "utilitarian", "worker"]);
  });

  test("a container with mounts is refused rather than recreated without them", () => {
    expect(() => runConfigOf({ ...container, Mounts: [{ Type: "volume" }] }, image, "1.1.0")).toThrow(
      /bdt-api has mounts/,
    );
  });
});
