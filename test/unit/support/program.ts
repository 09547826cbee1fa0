import * as pulumi from "@pulumi/pulumi";
import { UtilitarianDeployment } from "../../../components/deployment";
import { loaded, SECRET_VALUES } from "./fixtures";
import { RecordingMocks } from "./mocks";

export interface Deployed {
  mocks: RecordingMocks;
  deployment: UtilitarianDeployment;
}

/**
 * Builds the component under the recording mock from plain config values (validated exactly as
 * index.ts does) and waits until every resource registered. `hold` names resources whose
 * answers are held back; the caller releases them through `mocks`.
 */
export async function deploy(
  values: Record<string, unknown> = {},
  options: { prefix?: string; before?: (m: RecordingMocks) => void; secrets?: Record<string, string> } = {},
): Promise<Deployed> {
  const mocks = new RecordingMocks();
  options.before?.(mocks);
  await pulumi.runtime.setMocks(mocks, "utilitarian", "dev", false);
  const { settings, secrets } = loaded(values, options.secrets ?? SECRET_VALUES);
  const prefix = options.prefix ?? "u";
  const deployment = new UtilitarianDeployment(prefix, { ...settings, secrets, prefix });
  await mocks.idle();
  return { mocks, deployment };
}
