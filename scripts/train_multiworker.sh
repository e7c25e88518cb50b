#!/usr/bin/env bash
# Runs the training CLI on N local worker processes that train together (MultiWorkerMirroredStrategy
# over loopback): a rehearsal of a run on several machines, and what the multi-worker test starts.
#
#   scripts/train_multiworker.sh --workers 2 [--log-dir DIR] -- --data-path backend/data/interactions.jsonl \
#       --items-path backend/data/items.jsonl --model-dir backend/models/latest
#
# Each worker gets its own TF_CONFIG (free ports on 127.0.0.1) and runs the same command; worker 0 is
# the chief and the only one that writes --model-dir. Logs: DIR/worker-<i>.log (default: a new
# directory under $TMPDIR). Exits non-zero, stopping the others, as soon as any worker fails.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 --workers N [--log-dir DIR] -- <python -m app.registry.train flags>" >&2
  exit 2
}

workers=""
log_dir=""
while (($#)); do
  case "$1" in
    --workers) workers="${2:-}"; shift 2 || usage ;;
    --log-dir) log_dir="${2:-}"; shift 2 || usage ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "error: --workers needs a whole number >= 1" >&2; usage; }
(($#)) || { echo "error: give the training flags after --" >&2; usage; }
log_dir="${log_dir:-$(mktemp -d "${TMPDIR:-/tmp}/train-multiworker.XXXXXX")}"
mkdir -p "$log_dir"

# Free ports: bound together (so they differ) and released just before the workers take them.
ports=$(.venv/bin/python - "$workers" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
read -r -a ports <<<"$ports"
cluster=$(printf '"127.0.0.1:%s",' "${ports[@]}")
cluster="{\"worker\": [${cluster%,}]}"

export PYTHONPATH=backend OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# The workers share this machine's cores: one TensorFlow thread pool each of cores / N.
cores=$(nproc 2>/dev/null || echo 1)
export RECOMMENDER_TF_THREADS=${RECOMMENDER_TF_THREADS:-$((cores / workers > 0 ? cores / workers : 1))}

pids=()
for ((i = 0; i < workers; i++)); do
  TF_CONFIG="{\"cluster\": $cluster, \"task\": {\"type\": \"worker\", \"index\": $i}}" \
    .venv/bin/python -m app.registry.train --distribute multiworker "$@" >"$log_dir/worker-$i.log" 2>&1 &
  pids+=($!)
  echo "worker $i$( ((i == 0)) && echo ' (chief)'): pid $!, log $log_dir/worker-$i.log"
done

stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT TERM

status=0
running=("${pids[@]}")
while ((${#running[@]})); do
  finished=""
  if wait -n -p finished "${running[@]}"; then code=0; else code=$?; fi
  for ((i = 0; i < workers; i++)); do [[ "${pids[i]}" == "$finished" ]] && break; done
  still=()
  for pid in "${running[@]}"; do [[ "$pid" == "$finished" ]] || still+=("$pid"); done
  running=("${still[@]}")
  echo "worker $i exited with status $code"
  if ((code != 0 && status == 0)); then
    status=$code
    echo "worker $i failed; stopping the others. Its log ends:" >&2
    tail -n 20 "$log_dir/worker-$i.log" >&2
    stop_all
  fi
done
echo "logs: $log_dir (the chief's: $log_dir/worker-0.log)"
exit "$status"
