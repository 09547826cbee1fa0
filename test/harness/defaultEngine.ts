import { RecordingMocks } from "../unit/support/mocks";
import type { EngineHook, HarnessRegistration, HookAnswer } from "./types";
import { UNKNOWN } from "./wire";

/**
 * The default engine hook: answers every non-dynamic custom resource with the outputs the unit
 * tests' recording mock gives (`computedOutputs` in test/unit/support/mocks.ts: container IDs from
 * a digest of the inputs, `imageId`/`repoDigest` for a RemoteImage, `stdout` for a Command, with
 * `BACKUP_FILE=...` for the backup), by calling that mock, so the two never drift apart.
 */
export function modelEngine(): Required<EngineHook> {
  const model = new RecordingMocks();
  return {
    register: async (r: HarnessRegistration): Promise<HookAnswer> => {
      const { id, state } = await model.newResource({
        type: r.type,
        name: r.name,
        inputs: r.inputs,
        provider: r.provider,
        custom: r.custom,
        id: "",
      });
      return { id: id ?? "", outputs: state };
    },
  };
}

/**
 * Answers as a first-install preview does: a resource being created has no ID yet and every
 * output a provider computes (everything but the inputs) is unknown.
 */
export function unknownOutputsEngine(computed: Record<string, string[]> = COMPUTED_OUTPUTS): Required<EngineHook> {
  return {
    register: async (r: HarnessRegistration): Promise<HookAnswer> => {
      const outputs: Record<string, any> = { ...r.inputs };
      for (const key of computed[r.type] ?? []) outputs[key] = UNKNOWN;
      return { id: r.type.startsWith("pulumi:providers:") ? UNKNOWN : "", outputs };
    },
  };
}

/** The outputs the bridged providers compute (not echoed inputs), for the types the program uses. */
export const COMPUTED_OUTPUTS: Record<string, string[]> = {
  "docker:index/remoteImage:RemoteImage": ["imageId", "repoDigest"],
  "docker:index/container:Container": ["networkData", "exitCode", "containerLogs"],
  "docker:index/network:Network": ["ipamConfigs", "scope"],
  "docker:index/volume:Volume": ["mountpoint"],
  "command:local:Command": ["stdout", "stderr"],
  "postgresql:index/role:Role": [],
  "postgresql:index/database:Database": [],
};
