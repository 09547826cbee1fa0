#!/usr/bin/env bash
# On a Docker Swarm, the new images pulled on every node that will run them, before anything
# stops (see docs/step-scripts.md). PULL_IMAGES says, one line each, `LABEL IMAGE SERVICES`: the
# nodes labelled LABEL=true run tasks of SERVICES (comma-separated), from IMAGE (by digest). The
# manager (DOCKER_HOST) says which nodes have each label; each node's engine is reached through
# SWARM_NODE_HOSTS. A node that already has an image is not asked to pull it (a re-run, or going
# back to a version the node ran before, needs no registry). Any node without an entry in
# SWARM_NODE_HOSTS, or that cannot pull, fails the step before any pull ends the run half-way:
# all nodes are checked first, then all pull, and the run stops before the backup.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=pull
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_vars \
  SWARM_NODE_HOSTS "utilitarian:swarm.nodeHosts, how this machine reaches each swarm node's Docker engine" \
  PULL_IMAGES "the images and the node labels of the services that run them; set by the deployment"
PULL_TIMEOUT_SECONDS="${PULL_TIMEOUT_SECONDS:-600}"
require_int PULL_TIMEOUT_SECONDS 1
docker_setup_env
swarm_setup_env
make_work_dir
command -v timeout >/dev/null || die "$STEP: timeout (coreutils) is not on PATH"

# Per node ID: its name, its engine, and what it must hold ("IMAGE SERVICES" lines).
declare -A NODE_IMAGES=() NODE_HOST_OF=() NODE_NAME_OF=()
NODE_ORDER=()
missing=()
started=$(now_ms)

NODE_IDS=$(docker node ls -q 2>&1) || die "$STEP: cannot list the swarm's nodes on the manager: ${NODE_IDS//$'\n'/ }"

# nodes_with_label LABEL: NODES, "ID HOSTNAME STATE AVAILABILITY" of every node whose LABEL is
# "true", as the services' placement constraint (node.labels.LABEL == true) reads it.
nodes_with_label() {
  local out
  # shellcheck disable=SC2086 # one argument per node ID
  out=$(docker node inspect -f "{{.ID}} {{.Description.Hostname}} {{.Status.State}} {{.Spec.Availability}} {{index .Spec.Labels \"$1\"}}" $NODE_IDS 2>&1) ||
    die "$STEP: cannot inspect the swarm's nodes on the manager: ${out//$'\n'/ }"
  NODES=$(awk '$5 == "true" { print $1, $2, $3, $4 }' <<<"$out")
}

while read -r label image services; do
  [[ -n "$label" ]] || continue
  [[ -n "$image" && -n "$services" ]] || die "$STEP: a line of PULL_IMAGES is not 'LABEL IMAGE SERVICES': '$label $image'"
  eligible=0
  nodes_with_label "$label"
  while read -r id name state availability; do
    [[ -n "$id" ]] || continue
    # Swarm places no new task on a node that is down, drained or paused: it pulls when a task of
    # it starts later (then from the registry).
    if [[ "$state" != ready || "$availability" != active ]]; then
      log "node $name ($id) is labelled $label=true but $state and $availability: skipped, no task of $services starts there now"
      continue
    fi
    eligible=$((eligible + 1))
    if [[ -z "${NODE_NAME_OF[$id]:-}" ]]; then
      NODE_ORDER+=("$id")
      NODE_NAME_OF[$id]=$name
      if swarm_lookup_host "$id" "will run a task of $services"; then
        NODE_HOST_OF[$id]=$NODE_HOST
      else
        missing+=("$name (ID $id, labelled $label=true, runs $services)")
      fi
    fi
    NODE_IMAGES[$id]+="$image $services"$'\n'
  done <<<"$NODES"
  ((eligible > 0)) || die "$STEP: no ready and active swarm node is labelled $label=true, so the tasks of $services would have nowhere to run once the old ones stopped; nothing was stopped. Label a node (docker node update --label-add $label=true NODE) or set swarm.labels, then run pulumi up again"
done <<<"$PULL_IMAGES"

if ((${#missing[@]} > 0)); then
  for m in "${missing[@]:1}"; do log "also without an entry in SWARM_NODE_HOSTS: $m"; done
  die "$STEP: swarm node ${missing[0]}, but SWARM_NODE_HOSTS has no entry for it, so its images cannot be pulled there before anything stops${missing[1]:+ (and ${#missing[@]} nodes in all, above)}; nothing was stopped. Add each to swarm.nodeHosts (pulumi config set --path 'utilitarian:swarm.nodeHosts.<node>' ssh://user@host), then run pulumi up again"
fi

# node_pull ID: pulls what node ID lacks, into $WORK/<ID>.out ("present IMAGE", "pulled IMAGE
# SECONDS" or "failed IMAGE SERVICES: ERROR" lines). Runs in the background, one per node.
node_pull() {
  local id=$1 image services err t
  while read -r image services; do
    [[ -n "$image" ]] || continue
    if on_node "${NODE_HOST_OF[$id]}" docker image inspect "$image" >/dev/null 2>&1; then
      printf 'present %s\n' "$image"
      continue
    fi
    t=$(now_ms)
    if err=$(on_node "${NODE_HOST_OF[$id]}" timeout "$PULL_TIMEOUT_SECONDS" docker pull -q "$image" 2>&1 >/dev/null); then
      printf 'pulled %s %s\n' "$image" "$(seconds_since "$t")"
    else
      [[ -n "$err" ]] || err="no answer within ${PULL_TIMEOUT_SECONDS}s (PULL_TIMEOUT_SECONDS)"
      printf 'failed %s %s: %s\n' "$image" "$services" "${err//$'\n'/ }"
    fi
  done < <(sort -u <<<"${NODE_IMAGES[$id]}")
}

PULL_PIDS=()
pull_stop_children() {
  local pid
  for pid in "${PULL_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
on_exit pull_stop_children

for id in "${NODE_ORDER[@]}"; do
  log "node ${NODE_NAME_OF[$id]}: $(sort -u <<<"${NODE_IMAGES[$id]}" | awk 'NF { print $1 }' | paste -sd ' ' -)"
  node_pull "$id" >"$WORK/$id.out" 2>&1 &
  PULL_PIDS+=("$!")
done
for pid in "${PULL_PIDS[@]}"; do wait "$pid" || true; done
PULL_PIDS=()

pulled=0 present=0 failures=()
for id in "${NODE_ORDER[@]}"; do
  name=${NODE_NAME_OF[$id]}
  while read -r outcome image rest; do
    case "$outcome" in
    present)
      present=$((present + 1))
      log "node $name has $image already"
      ;;
    pulled)
      pulled=$((pulled + 1))
      log "node $name pulled $image in ${rest}s"
      ;;
    failed)
      failures+=("node $name (ID $id) cannot pull $image, which ${rest%%:*} run there: ${rest#*: }")
      log "${failures[-1]}"
      ;;
    *) failures+=("node $name (ID $id): unexpected output of the pull: $outcome $image $rest") ;;
    esac
  done <"$WORK/$id.out"
done
if ((${#failures[@]} > 0)); then
  die "$STEP: ${failures[0]}${failures[1]:+ (and $((${#failures[@]} - 1)) more failure(s), above)}; nothing was stopped. Make the registry reachable from that node (network, DNS, its daemon's insecure-registries or CA for the registry; a private registry's login is this machine's: docker login), then run pulumi up again"
fi
printf 'pull: %d image(s) pulled, %d already there, on %d node(s) in %ss\n' \
  "$pulled" "$present" "${#NODE_ORDER[@]}" "$(seconds_since "$started")"
