# Sourced by the docs/run_*.sh scripts: one training run into $OUT, skipped when it has finished.
# Needs OUT; PY (default .venv/bin/python) and NICE (a command prefix, default none) are optional.
run() {  # run <name> <flags...>: trains into $OUT/<name>, log in $OUT/<name>.log
  local name=$1; shift
  [ -f "$OUT/$name/metrics.json" ] && return
  echo "$(date +%T) start $name"
  ${NICE:-} "${PY:-.venv/bin/python}" main.py "$@" --workdir="$OUT/$name" > "$OUT/$name.log" 2>&1
  local rc=$?  # before the echo: its $(date) would reset $?
  echo "$(date +%T) end $name rc=$rc"
}

# seeded <name> <seed> <flags...>: `run` with --seed, skipped while another lane holds its lock
# (so lanes that walk the same list share it out). It first copies the warm-start cache of an
# earlier run of the same seed, $OUT/*_s<seed> (CACHE_FROM narrows the glob's '*'). The cache is
# keyed on its settings and a hash of the training images, so a copy that does not fit is rebuilt;
# a copy only saves recomputing the same clustering (2-4 minutes on mnist_5k).
seeded() {
  local name=$1 seed=$2; shift 2
  [ -f "$OUT/$name/metrics.json" ] && return
  mkdir "$OUT/$name.lock" 2>/dev/null || return
  local cache
  cache=$(ls -d "$OUT"/${CACHE_FROM:-*}_s"$seed"/warm_start 2>/dev/null | head -1)
  if [ -n "$cache" ] && [ ! -d "$OUT/$name/warm_start" ]; then
    mkdir -p "$OUT/$name" && cp -r "$cache" "$OUT/$name/"
  fi
  run "$name" "$@" --seed="$seed"
  rmdir "$OUT/$name.lock"
}
