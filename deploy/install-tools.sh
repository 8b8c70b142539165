#!/usr/bin/env bash
# Installs the pinned Go programs bulkflow runs locally (Temporal CLI dev server, the Temporal
# server itself and its SQL schema tool, GCS emulator, S3 server, kustomize) into .tools/bin, and the Temporal server's
# PostgreSQL schema files into .tools/temporal-schema. Binaries are built once per version into a per-user cache and linked, so a
# fresh clone reuses them. Idempotent: a tool already at the pinned version is skipped.
# With arguments, only those: `temporal` (the CLI and its dev server: all `npm start` needs),
# `temporal-server` (the server, its SQL tool and schema), `fake-gcs-server`, `versitygw`, `kustomize`.
# bulkflow builds a missing one the first time a command needs it (src/process/find-binary.ts).
set -euo pipefail

TEMPORAL_CLI_VERSION=v1.5.1
TEMPORAL_SERVER_VERSION=v1.29.1
FAKE_GCS_VERSION=v1.55.1
KUSTOMIZE_VERSION=v5.7.1
VERSITYGW_VERSION=v1.8.0

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir="$root/.tools/bin"
cache_dir="${BULKFLOW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulkflow-tools}"
mkdir -p "$bin_dir" "$cache_dir"

if ! command -v go >/dev/null 2>&1; then
  echo "install-tools: 'go' was not found on PATH. Install Go >= 1.25.8 (https://go.dev/doc/install)," >&2
  echo "or point TEMPORAL_CLI_PATH and FAKE_GCS_PATH at prebuilt binaries." >&2
  exit 1
fi

# install NAME MODULE VERSION [BINARY]: build into the cache (once), then link into .tools/bin as NAME
# (BINARY: the name go install gives it, the module path's last element, when it differs).
install_tool() {
  local name=$1 module=$2 version=$3 binary=${4:-$1}
  local target="$cache_dir/$name-$version"
  if [ ! -x "$target/$binary" ]; then
    echo "install-tools: building $module@$version (first time only; takes a few minutes)"
    local started=$SECONDS
    mkdir -p "$target.partial"
    if ! GOBIN="$target.partial" GOFLAGS=-mod=mod go install "$module@$version"; then
      echo "install-tools: retrying with GOSUMDB=off (checksum database unreachable?)" >&2
      GOBIN="$target.partial" GOFLAGS=-mod=mod GOSUMDB=off go install "$module@$version"
    fi
    rm -rf "$target" && mv "$target.partial" "$target"
    echo "install-tools: built $name $version in $((SECONDS - started)) s"
  fi
  ln -sfn "$target/$binary" "$bin_dir/$name"
  echo "install-tools: $name $version -> $bin_dir/$name"
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(temporal fake-gcs-server versitygw temporal-server kustomize)
want() { local w; for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
for w in "${wanted[@]}"; do
  case $w in temporal | fake-gcs-server | versitygw | temporal-server | kustomize) ;; *) echo "install-tools: unknown tool $w" >&2; exit 2 ;; esac
done

if want temporal; then install_tool temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION"; fi
if want fake-gcs-server; then install_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"; fi
# The S3 server of the tests and benches: checks SigV4 signatures (presigned URLs included).
if want versitygw; then install_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"; fi
# Renders deploy/k8s in the tests (what `kubectl kustomize` does), without a cluster.
if want kustomize; then install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"; fi
want temporal-server || exit 0
install_tool temporal-server go.temporal.io/server/cmd/server "$TEMPORAL_SERVER_VERSION" server
install_tool temporal-sql-tool go.temporal.io/server/cmd/tools/sql "$TEMPORAL_SERVER_VERSION" sql

# The server's PostgreSQL schema ships in its module: keep a copy beside the binaries.
schema="$cache_dir/temporal-schema-$TEMPORAL_SERVER_VERSION"
if [ ! -d "$schema/postgresql" ]; then
  module_dir="$(go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION"
  if [ ! -d "$module_dir/schema/postgresql" ]; then
    GOFLAGS=-mod=mod go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" >/dev/null
  fi
  mkdir -p "$schema.partial" && cp -R "$module_dir/schema/postgresql" "$schema.partial/" && chmod -R u+w "$schema.partial"
  rm -rf "$schema" && mv "$schema.partial" "$schema"
fi
ln -sfn "$schema" "$root/.tools/temporal-schema"
echo "install-tools: temporal server schema $TEMPORAL_SERVER_VERSION -> $root/.tools/temporal-schema"
