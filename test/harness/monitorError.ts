import * as grpc from "@grpc/grpc-js";

/** A gRPC error the test engine's monitor answers the program with. */
export class MonitorError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What the engine's monitor answers once the deployment was cancelled (source_eval.go: "resource
 * monitor shut down while ..."); the SDK then stops quietly, the engine having reported the error.
 */
export const shutDown = (while_: string) =>
  new MonitorError(grpc.status.UNAVAILABLE, `resource monitor shut down while ${while_}`);

/** What a step leaves in the engine's state for one resource. */
export interface StepResult {
  id: string;
  inputs: Record<string, any>;
  outputs: Record<string, any>;
}
