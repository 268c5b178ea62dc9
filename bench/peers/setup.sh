#!/bin/sh
# Installs the peer servers for `npm run bench -- --peers` (Prosody 0.12 and ejabberd 23 from
# Debian packages) and writes comparable configurations for them into a scratch folder:
# loopback only, the domain "localhost", STARTTLS offered but not required, PLAIN allowed
# without TLS, no message archive, no offline storage, no traffic shaping or rate limits,
# in-band registration open (the benchmark creates user1..userN through XEP-0077),
# SCRAM keys stored with 4096 iterations, one EC P-256 self-signed certificate.
# The packages' own services stay stopped; `bench/run.ts --peers` starts each server itself,
# pinned to core 0, and stops it afterwards.
#
# usage: bench/peers/setup.sh [--configs-only] [DIR]
#   DIR defaults to $MEERKAT_BENCH_PEERS or /tmp/meerkat-bench-peers
#   PROSODY_PORT (default 15222) and EJABBERD_PORT (default 25222) pick the c2s ports.
set -eu

CONFIGS_ONLY=0
if [ "${1:-}" = "--configs-only" ]; then CONFIGS_ONLY=1; shift; fi
DIR="${1:-${MEERKAT_BENCH_PEERS:-/tmp/meerkat-bench-peers}}"
PROSODY_PORT="${PROSODY_PORT:-15222}"
EJABBERD_PORT="${EJABBERD_PORT:-25222}"

if [ "$CONFIGS_ONLY" = 0 ]; then
  if ! command -v prosody >/dev/null 2>&1 || ! command -v ejabberdctl >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    # A policy-rc.d that denies service starts keeps the packages' daemons off ports 5222/5269.
    POLICY=/usr/sbin/policy-rc.d
    CREATED_POLICY=0
    if [ ! -e "$POLICY" ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
      $SUDO chmod +x "$POLICY"
      CREATED_POLICY=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y prosody ejabberd
    [ "$CREATED_POLICY" = 0 ] || $SUDO rm -f "$POLICY"
  fi
  # Whatever the packages may have started, stop it (the benchmark runs its own instances).
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop prosody ejabberd 2>/dev/null || true
  fi
fi

for tool in prosody ejabberdctl openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup.sh: $tool is not installed (run without --configs-only)" >&2; exit 1; }
done

mkdir -p "$DIR/prosody/data" "$DIR/ejabberd/spool" "$DIR/ejabberd/logs"
chmod 755 "$DIR"

# One certificate for both, like the one Meerkat generates for itself (EC P-256, SHA-256).
if [ ! -f "$DIR/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
fi
cp "$DIR/cert.pem" "$DIR/key.pem" "$DIR/prosody/"
cat "$DIR/key.pem" "$DIR/cert.pem" > "$DIR/ejabberd/server.pem"

# ---- Prosody 0.12 ----
cat > "$DIR/prosody/prosody.cfg.lua" <<EOF
-- Written by bench/peers/setup.sh for the Meerkat benchmark.
run_as_root = true
daemonize = false
pidfile = "$DIR/prosody/prosody.pid"
data_path = "$DIR/prosody/data"
plugin_paths = {}
admins = {}
interfaces = { "127.0.0.1" }
network_settings = { tcp_backlog = 1024; nagle = false }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "version"; "time"; "lastactivity";
  "vcard_legacy"; "blocklist"; "register";
}
modules_disabled = { "s2s"; "offline"; "c2s_timeout" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
default_iteration_count = 4096
allow_registration = true
registration_whitelist = { "127.0.0.1", "::1" }
min_seconds_between_registrations = 0
storage = "internal"
log = { warn = "$DIR/prosody/prosody.log" }
certificates = "$DIR/prosody"
ssl = { certificate = "$DIR/prosody/cert.pem"; key = "$DIR/prosody/key.pem" }

VirtualHost "localhost"
EOF

# ---- ejabberd 23 ----
cat > "$DIR/ejabberd/ejabberd.yml" <<EOF
# Written by bench/peers/setup.sh for the Meerkat benchmark.
loglevel: warning
hosts:
  - localhost
certfiles:
  - "$DIR/ejabberd/server.pem"
listen:
  -
    port: $EJABBERD_PORT
    ip: "127.0.0.1"
    backlog: 1024
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: true
    starttls_required: false
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
registration_timeout: infinity
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_version: {}
  mod_time: {}
  mod_last: {}
  mod_vcard: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_register:
    access: register
    ip_access: all
EOF

cat > "$DIR/ejabberd/ejabberdctl.cfg" <<EOF
# Written by bench/peers/setup.sh for the Meerkat benchmark.
# bench/run.ts starts ejabberdctl as the ejabberd user itself (setpriv), not through its su,
# which would drop the open-files limit to 1024 and refuse connections past ~1000.
ERLANG_NODE=ejabberd-bench@localhost
EJABBERD_CONFIG_PATH=$DIR/ejabberd/ejabberd.yml
SPOOL_DIR=$DIR/ejabberd/spool
EJABBERD_PID_PATH=$DIR/ejabberd/ejabberd.pid
POLL=true
ERL_MAX_PORTS=65536
ERL_PROCESSES=1000000
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EOF
if id ejabberd >/dev/null 2>&1; then chown -R ejabberd "$DIR/ejabberd"; fi

cat > "$DIR/peers.json" <<EOF
{
  "dir": "$DIR",
  "domain": "localhost",
  "prosody": { "port": $PROSODY_PORT, "version": "$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo unknown)" },
  "ejabberd": { "port": $EJABBERD_PORT, "version": "$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo unknown)" }
}
EOF
echo "peer configs written to $DIR (prosody :$PROSODY_PORT, ejabberd :$EJABBERD_PORT)"
