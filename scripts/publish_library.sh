#!/usr/bin/env bash
# Publishes the committed LoRA module library to a lorahub hub with `lorahub hub push`: one repo
# "<user>/<library>-<task>" per module of <library dir>/manifest.json (library/smollm2 by default,
# or --library library/gemma3), tagged with the library's name and under its license (manifest).
#
#   scripts/publish_library.sh                      start a local hub (data in .cache/hub), create
#                                                   a token for the user, push every module, stop
#   scripts/publish_library.sh --endpoint URL       push to a running hub; token from $HF_TOKEN
# Options: --root DIR (local hub folder), --user NAME (default lorahub), --library DIR.
# Serve the local hub afterwards with: lorahub hub serve --root .cache/hub
set -euo pipefail
cd "$(dirname "$0")/.."

LORAHUB=${LORAHUB_BIN:-build/bin/lorahub}
LIBRARY=library/smollm2
ROOT=.cache/hub
USER_NAME=lorahub
ENDPOINT=""

while (($#)); do
  case $1 in
    --endpoint) ENDPOINT=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --user) USER_NAME=$2; shift 2 ;;
    --library) LIBRARY=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "publish_library: unknown argument $1" >&2; exit 2 ;;
  esac
done

[[ -x $LORAHUB ]] || { echo "publish_library: $LORAHUB not built (scripts/build.sh)" >&2; exit 1; }
[[ -f $LIBRARY/manifest.json ]] || { echo "publish_library: no $LIBRARY/manifest.json" >&2; exit 1; }

# Starts `lorahub hub serve` on a free port and sets ENDPOINT from the line it prints.
start_local_hub() {
  mkdir -p "$ROOT"
  local log="$ROOT/serve.log"
  "$LORAHUB" hub serve --root "$ROOT" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    ENDPOINT=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" || true)
    [[ -n $ENDPOINT ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n $ENDPOINT ]] || { echo "publish_library: hub did not start" >&2; exit 1; }
  HF_TOKEN=$("$LORAHUB" hub token create --root "$ROOT" --user "$USER_NAME")
  export HF_TOKEN
  echo "publish_library: local hub at $ENDPOINT (folder $ROOT)"
}

[[ -n $ENDPOINT ]] || start_local_hub

# The library's name and license (scripts/train_library.py records them in the manifest).
read -r NAME LICENSE < <(python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))
print(m.get("library", "smollm2"), m.get("license", "apache-2.0"))' "$LIBRARY/manifest.json")
# One "task<TAB>description" line per module, from the manifest.
python3 - "$LIBRARY/manifest.json" <<'EOF' |
import json, sys
for m in json.load(open(sys.argv[1]))["modules"]:
    print(f"{m['task']}\t{m['description']}")
EOF
while IFS=$'\t' read -r task description; do
  "$LORAHUB" hub push "$LIBRARY/$task" --repo "$USER_NAME/$NAME-${task//_/-}" --task "$task" \
    --description "$description" --tags "$NAME,lorahub-library,upstream" \
    --license "$LICENSE" --message "LoRA module for $task (scripts/train_library.py)" \
    --endpoint "$ENDPOINT"
done
