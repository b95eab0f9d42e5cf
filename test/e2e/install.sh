#!/usr/bin/env bash
# Installs what the real-CAO end-to-end suite needs, idempotently, from the project's own files:
#  - tmux (Debian package) when missing;
#  - the CAO plugin (integrations/cao-plugin) built as wheel + sdist with the standard `build` frontend;
#  - per CAO version listed in test/e2e/cao-versions, two venvs outside the repository:
#      venvs/cao-<v>          cli-agent-orchestrator==<v>, dependencies pinned by constraints/cao-<v>.txt
#      venvs/cao-<v>-plugin   the same plus the plugin wheel, installed with pip the way a user installs it
#                             (reinstalled over the old one when the plugin's sources change)
#    under ${CAO_EVENTS_CACHE:-$HOME/.cache/cao-events}. A venv is reused while its stamp (a digest of
#    what went into it) matches; otherwise it is rebuilt from nothing.
# Prints the cache directory on the last line. Any missing tool is an error, never a skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${CAO_EVENTS_CACHE:-$HOME/.cache/cao-events}
build_version=1.6.1
mkdir -p "$cache/venvs" "$cache/dist"

log() { printf 'install-real-cao: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

apt_install() {
  command -v apt-get >/dev/null || die "$* missing and apt-get unavailable: install $* yourself"
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

command -v tmux >/dev/null || { log "installing tmux"; apt_install tmux; }
command -v tmux >/dev/null || die "tmux is still missing"
command -v python3 >/dev/null || { log "installing python3"; apt_install python3; }
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || die "python3 >= 3.10 required (CAO's requires-python)"
# Debian splits venv/ensurepip out of python3.
python3 -c 'import ensurepip, venv' 2>/dev/null || { log "installing python3-venv"; apt_install python3-venv; }

digest() { sha256sum | cut -c1-16; }
pyver=$(python3 -c 'import sys; print(sys.version)')

# Creates venv $1 from nothing unless its stamp equals $2; $3… are pip install arguments.
ensure_venv() {
  local dir=$1 stamp=$2; shift 2
  if [ -f "$dir/.cao-events-stamp" ] && [ "$(cat "$dir/.cao-events-stamp")" = "$stamp" ]; then
    log "reusing $(basename "$dir")"
    return
  fi
  log "creating $(basename "$dir")"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  case " $* " in
    *" cli-agent-orchestrator=="*)
      [ -x "$dir/bin/cao-server" ] || die "$dir has no cao-server"
      # CAO's dependencies are unbounded: prove this venv's CAO imports before stamping it.
      if ! out=$("$dir/bin/python" -c 'import cli_agent_orchestrator.api.main, cli_agent_orchestrator.mcp_server.server' 2>&1); then
        printf '%s\n' "$out" >&2
        die "CAO does not import in $dir (a dependency drifted? see the constraints file)"
      fi ;;
  esac
  echo "$stamp" > "$dir/.cao-events-stamp"
}

# 1. The plugin as a real package: wheel + sdist from integrations/cao-plugin with `python -m build`.
ensure_venv "$cache/venvs/build-tools" "build==$build_version $pyver" "build==$build_version"
plugin_src=$root/integrations/cao-plugin
plugin_digest=$( (cd "$plugin_src" && find . -type f \( -name '*.py' -o -name '*.toml' -o -name '*.md' -o -name MANIFEST.in \) \
  -not -path './tests/*' -not -path '*/build/*' -not -path '*.egg-info/*' | LC_ALL=C sort | xargs sha256sum) | digest)
plugin_dist=$cache/dist/cao-plugin-$plugin_digest
if ! ls "$plugin_dist"/*.whl >/dev/null 2>&1 || ! ls "$plugin_dist"/*.tar.gz >/dev/null 2>&1; then
  log "building the CAO plugin (wheel + sdist)"
  rm -rf "$plugin_dist"
  tmp=$(mktemp -d)
  cp -r "$plugin_src/." "$tmp/"
  rm -rf "$tmp/build" "$tmp"/*.egg-info "$tmp/dist"
  if ! "$cache/venvs/build-tools/bin/python" -m build --sdist --wheel --outdir "$plugin_dist" "$tmp" > "$tmp.log" 2>&1; then
    cat "$tmp.log" >&2; die "building the plugin failed"
  fi
  rm -rf "$tmp" "$tmp.log"
fi
wheel=$(ls "$plugin_dist"/*.whl)

# 2. One venv per CAO version, and one with the plugin installed.
while read -r version provider _; do
  case "$version" in ''|'#'*) continue ;; esac
  constraints=$here/constraints/cao-$version.txt
  [ -f "$constraints" ] || die "no constraints file for CAO $version ($constraints)"
  base_stamp=$( { echo "$version $pyver"; cat "$constraints"; } | digest)
  ensure_venv "$cache/venvs/cao-$version" "$base_stamp" \
    -c "$constraints" "cli-agent-orchestrator==$version" "libtmux==0.51.0"
  ensure_venv "$cache/venvs/cao-$version-plugin" "$base_stamp" \
    -c "$constraints" "cli-agent-orchestrator==$version" "libtmux==0.51.0"
  # The plugin goes in as a user installs it: pip install of the wheel into CAO's environment
  # (again, over the old one, whenever the plugin's sources change).
  plugin_venv=$cache/venvs/cao-$version-plugin
  if [ "$(cat "$plugin_venv/.cao-events-plugin-stamp" 2>/dev/null)" != "$plugin_digest" ]; then
    log "installing the plugin wheel into cao-$version-plugin"
    "$plugin_venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel" >&2
    echo "$plugin_digest" > "$plugin_venv/.cao-events-plugin-stamp"
  fi
  "$cache/venvs/cao-$version-plugin/bin/python" -c 'import importlib.metadata as m; import sys; sys.exit(0 if any(e.name == "cao-events" for e in m.entry_points(group="cao.plugins")) else 1)' \
    || die "the cao-events plugin is not registered in cao-$version-plugin"
  log "CAO $version ready (stand-in provider $provider)"
done < "$here/cao-versions"
echo "$cache"
