import { VIA_PROPERTY, type DeploymentPlan, type Via } from "../../components/plan";

/** The parts of a registration the comparison reads (the mock's and the runtime harness's records both have them). */
export interface RecordedEdges {
  type: string;
  name: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  replaceWith?: string[];
}

/**
 * Resources that belong to a node without being its main resource: a managed server's data
 * volume, the postgresql provider and role of the database node.
 */
const PART_OF: Record<string, string> = {
  "postgres-data": "postgres",
  "rabbitmq-data": "rabbitmq",
  postgresql: "database",
  role: "database",
};

/**
 * On a swarm a service's image, network and environment are all parts of its `taskSpec`; its
 * labels are the service's own, as a container's are.
 */
const SWARM_SERVICE = "docker:index/service:Service";
const propertyOf = (via: Exclude<Via, "dependsOn">, type: string): string =>
  type === SWARM_SERVICE && ["image", "network", "apiBaseUrl"].includes(via) ? "taskSpec" : VIA_PROPERTY[via];

/**
 * Differences between what the plan says each node waits for and what the program's resources
 * really waited for, as the register requests carried it: `dependencies` (dependsOn and inputs)
 * and `propertyDependencies` (inputs, by property). Empty when the plan is the whole truth.
 */
export function planEdgeDifferences(
  plan: DeploymentPlan,
  registrations: RecordedEdges[],
  componentName: string,
): string[] {
  const nodeOf = (resource: string): string | undefined => {
    if (!resource.startsWith(`${componentName}-`)) return undefined;
    const key = resource.slice(componentName.length + 1);
    return PART_OF[key] ?? (plan.nodes.some((n) => n.key === key) ? key : undefined);
  };
  const byName = new Map(registrations.map((r) => [r.name, r]));
  const problems: string[] = [];
  for (const node of plan.nodes) {
    const main = byName.get(`${componentName}-${node.key}`);
    if (!main) {
      problems.push(`${node.key}: no resource ${componentName}-${node.key} registered`);
      continue;
    }
    const parts = registrations.filter((r) => r === main || nodeOf(r.name) === node.key);
    const waited = new Set(
      parts.flatMap((r) => r.dependencies.map(nodeOf)).filter((k): k is string => k !== undefined && k !== node.key),
    );
    const planned = new Set(node.waits.map((w) => w.on));
    for (const k of waited)
      if (!planned.has(k)) problems.push(`${node.key} waits for ${k}, which the plan does not say`);
    for (const k of planned)
      if (!waited.has(k)) problems.push(`${node.key}: the plan says it waits for ${k}, but it did not`);

    for (const w of node.waits) {
      if (w.via === "dependsOn") continue;
      const property = propertyOf(w.via, main.type);
      const from = (main.propertyDependencies[property] ?? []).map(nodeOf);
      if (!from.includes(w.on)) problems.push(`${node.key}.${property} should take a value from ${w.on} (${w.via})`);
    }
    if (node.kind === "service") {
      const replacedWith = (main.replaceWith ?? []).map(nodeOf).sort();
      if (JSON.stringify(replacedWith) !== JSON.stringify([...node.replacedWith].sort())) {
        problems.push(
          `${node.key} is replaced with [${replacedWith.join(", ")}], the plan says [${node.replacedWith.join(", ")}]`,
        );
      }
    }
    const declaredInputs = new Set(
      node.waits
        .filter((w) => w.via !== "dependsOn")
        .map((w) => `${propertyOf(w.via as Exclude<typeof w.via, "dependsOn">, main.type)}<-${w.on}`),
    );
    for (const [property, deps] of Object.entries(main.propertyDependencies)) {
      for (const k of deps.map(nodeOf)) {
        if (k !== undefined && k !== node.key && !declaredInputs.has(`${property}<-${k}`))
          problems.push(`${node.key}.${property} takes a value from ${k}, which the plan does not say`);
      }
    }
  }
  return problems;
}
