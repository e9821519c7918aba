# Sourced by the docs/run_*.sh scripts: one training run into $OUT, skipped when it has finished.
# Needs OUT; PY (default .venv/bin/python) and NICE (a command prefix, default none) are optional.
run() {  # run <name> <flags...>: trains into $OUT/<name>, log in $OUT/<name>.log
  local name=$1; shift
  [ -f "$OUT/$name/metrics.json" ] && return
  echo "$(date +%T) start $name"
  ${NICE:-} "${PY:-.venv/bin/python}" main.py "$@" --workdir="$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "$(date +%T) end $name rc=$?"
}
