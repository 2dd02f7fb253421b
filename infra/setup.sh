#!/usr/bin/env bash
# One-time, idempotent set-up: the project virtualenv and every JVM/Go piece podrec runs.
# Each step is skipped when its recipe has not changed since it last succeeded (stamp files
# keyed by the recipe's hash), so a warm run takes seconds and nothing is fetched at run time.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PODREC_CACHE_DIR:-$HOME/.cache/podrec}
venv=$root/.venv
mkdir -p "$cache/stamps"

python_only=false
[ "${1:-}" = "--python-only" ] && python_only=true

log() { printf '[setup] %s\n' "$*"; }
recipe_hash() { cat "$@" | sha256sum | cut -c1-16; }
# done_before NAME HASH: true when step NAME last succeeded with this recipe.
done_before() { [ -f "$cache/stamps/$1-$2" ]; }
mark_done() { rm -f "$cache/stamps/$1"-*; touch "$cache/stamps/$1-$2"; }

# --- System packages: espeak-ng speaks the sample episodes for offline transcription;
# chromium renders the dashboard and API docs in the UI tests (Playwright drives it, never downloads one);
# wrk loads the API in bench/api.py; OpenBLAS gives Spark ALS native BLAS/LAPACK (dev.ludovic.netlib
# finds libblas.so.3, else it falls back to pure-Java loops, several times slower on the fit)
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v chromium >/dev/null || missing+=(chromium)
command -v wrk >/dev/null || missing+=(wrk)
ldconfig -p | grep -q 'libblas.so.3 ' || missing+=(libopenblas0-pthread)
# PostgreSQL backs the cluster profile's FerretDB and Dagster instance (`infra up --profile cluster`)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
# openssl makes the certificates of the cluster profile's object store (mutual TLS on SeaweedFS's gRPC ports)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ] && ! $python_only; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "system: installing ${missing[*]} (apt)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "system: missing ${missing[*]}; install with e.g. sudo apt-get install ${missing[*]}"
  fi
fi

# --- Python: project virtualenv from the lock file -------------------------------------
py_hash=$(recipe_hash "$root/requirements.lock" "$root/pyproject.toml")
if [ ! -f "$venv/.podrec-$py_hash" ]; then
  log "python: installing requirements.lock into .venv (pip cache kept in ~/.cache/pip)"
  [ -x "$venv/bin/python" ] || python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$root/requirements.lock"
  # compat mode puts the repo root on sys.path, so packages added later need no reinstall.
  "$venv/bin/python" -m pip install -q --no-deps -e "$root" --config-settings editable_mode=compat
  rm -f "$venv"/.podrec-*; touch "$venv/.podrec-$py_hash"
else
  log "python: .venv up to date"
fi

if $python_only; then
  log "done (python only)"
  exit 0
fi

# --- Spark jars: Delta Lake and the Kafka connector, minus what pyspark already bundles ---
spark_pom=$root/infra/maven/spark-jars/pom.xml
h=$(recipe_hash "$spark_pom")
if ! done_before spark-jars "$h"; then
  log "spark jars: resolving from Maven Central"
  out=$cache/jars/spark
  rm -rf "$out"; mkdir -p "$out"
  mvn -q -B -f "$spark_pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out"
  # A second copy of a library pyspark ships (hadoop, jackson, scala...) would shadow it on the
  # classpath, so keep only the artifacts pyspark does not have, whatever their version.
  pyspark_jars=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
  for jar in "$out"/*.jar; do
    artifact=$(basename "$jar" .jar | sed -E 's/-[0-9][^-]*(-[^-]*)?$//')
    if compgen -G "$pyspark_jars/$artifact-[0-9]*.jar" >/dev/null; then rm "$jar"; fi
  done
  mark_done spark-jars "$h"
else
  log "spark jars: cached"
fi

# maven_jars STEP POM DIR: the POM's runtime dependencies copied into DIR, once per recipe.
maven_jars() {
  local step=$1 pom=$2 out=$3 h
  h=$(recipe_hash "$pom")
  if done_before "$step" "$h"; then log "$step: cached"; return; fi
  log "$step: resolving from Maven Central"
  rm -rf "$out"; mkdir -p "$out"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out"
  mark_done "$step" "$h"
}

# --- S3A: hadoop-aws and the AWS SDK (a ~690 MB bundle), for a lake on an S3-API store (s3a://) ---
maven_jars s3a-jars "$root/infra/maven/s3a-jars/pom.xml" "$cache/jars/s3a"

# --- Kafka broker (KRaft) -----------------------------------------------------------------
maven_jars kafka-broker "$root/infra/maven/kafka-broker/pom.xml" "$cache/kafka/libs"

# --- FerretDB 1.x (SQLite backend) --------------------------------------------------------
ferret_mod=$root/infra/ferretdb
h=$(recipe_hash "$ferret_mod/go.mod" "$ferret_mod/go.sum" "$ferret_mod/patch.sh")
if ! done_before ferretdb "$h" || [ ! -x "$cache/bin/ferretdb" ]; then
  log "ferretdb: building with the Go toolchain"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  cp "$ferret_mod/go.mod" "$ferret_mod/go.sum" "$build/"
  # FerretDB embeds build/version/version.txt, which its published module leaves empty and
  # its binary refuses to start without; vendoring lets us supply the version it was pinned at.
  version=$(awk '$1 == "github.com/FerretDB/FerretDB" {print $2}' "$build/go.mod")
  (cd "$build" && go mod vendor \
    && echo "$version" > vendor/github.com/FerretDB/FerretDB/build/version/version.txt \
    && bash "$ferret_mod/patch.sh" vendor \
    && mkdir -p "$cache/bin" \
    && go build -mod=vendor -o "$cache/bin/ferretdb" github.com/FerretDB/FerretDB/cmd/ferretdb)
  mark_done ferretdb "$h"
else
  log "ferretdb: cached"
fi

# --- SeaweedFS: the S3-API object store of the cluster profile's lake -------------------------
weed_mod=$root/infra/seaweedfs
h=$(recipe_hash "$weed_mod/go.mod" "$weed_mod/go.sum")
if ! done_before seaweedfs "$h" || [ ! -x "$cache/bin/weed" ]; then
  log "seaweedfs: building with the Go toolchain (a few minutes the first time)"
  weed_build=$(mktemp -d)
  cp "$weed_mod/go.mod" "$weed_mod/go.sum" "$weed_build/"
  (cd "$weed_build" && mkdir -p "$cache/bin" && go build -o "$cache/bin/weed" github.com/seaweedfs/seaweedfs/weed)
  rm -rf "$weed_build"
  mark_done seaweedfs "$h"
else
  log "seaweedfs: cached"
fi

log "done (cache: $cache)"
