#!/usr/bin/env bash
# The .deb end to end, as root on a Debian/Ubuntu machine (CI): build it, read its
# control file and contents, install it with dpkg -i, check the files, the user
# and the unit, `systemd-analyze verify` the unit, run the installed binary as the
# service's user, then remove and purge (the data dir is kept unless asked).
# systemd need not be PID 1: nothing here talks to a running systemd.
# Ends with "packaging: N passed, N failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "packaging test skipped: it installs a package and needs root"
  exit 0
fi

pass=0
fail=0
work="$(mktemp -d)"
out="$work/out"
trap 'rm -rf "$work"' EXIT

check() {
  local what="$1"
  shift
  if "$@" >"$out" 2>&1; then
    pass=$((pass + 1))
    echo "ok    $what"
  else
    fail=$((fail + 1))
    echo "FAIL  $what"
    sed 's/^/      /' "$out"
  fi
}

# dpkg waits for no one: retry while another dpkg or apt holds its lock.
dpkg_retry() {
  local i
  for i in $(seq 1 60); do
    if "$@" 2>"$work/dpkg.err"; then
      cat "$work/dpkg.err" >&2
      return 0
    fi
    if grep -qi "lock" "$work/dpkg.err"; then
      sleep 2
      continue
    fi
    cat "$work/dpkg.err" >&2
    return 1
  done
  return 1
}

has() { grep -E -q -- "$1" "$2"; }

# Runs a command as the unit runs wabridge: user wabridge, a clean environment,
# WABRIDGE_DATA_DIR from the unit, then the settings file. setpriv and env exec
# (no fork), so a command started with `as_service … &` has the pid in $!.
as_service() {
  exec setpriv --reuid=wabridge --regid=wabridge --init-groups -- \
    env -i PATH=/usr/bin:/bin WABRIDGE_DATA_DIR=/var/lib/wabridge \
    ${WABRIDGE_ADMIN_TOKEN:+WABRIDGE_ADMIN_TOKEN=$WABRIDGE_ADMIN_TOKEN} \
    sh -c 'set -a; . /etc/wabridge/wabridge.env; set +a; exec "$@"' sh "$@"
}

started=$(date +%s)
DEB="$(packaging/build-deb.sh | tail -1)"
if [ -z "$DEB" ] || [ ! -f "$DEB" ]; then
  echo "FAIL  build the .deb"
  echo "packaging: 0 passed, 1 failed"
  exit 1
fi
echo "built $DEB ($(stat -c %s "$DEB") bytes) in $(($(date +%s) - started)) s"
BIN="target/x86_64-unknown-linux-gnu/release/wabridge"

# --- the binary
check "the binary is statically linked (file)" sh -c "file '$BIN' | grep -E 'static(ally|-pie) linked'"
check "the binary needs no shared library (ldd)" sh -c "! ldd '$BIN' 2>&1 | grep -q '=>'"
check "no OpenSSL in the binary" sh -c "! strings '$BIN' | grep -E -q 'libssl\.so|libcrypto\.so'"
check "--version names the version and the commit" sh -c "'$BIN' --version | grep -E '^wabridge [0-9.]+ \(commit [0-9a-f]{12}\)$'"

# --- the package, unopened
dpkg-deb -I "$DEB" >"$work/info"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
check "control: Package wabridge" has '^ Package: wabridge$' "$work/info"
check "control: Version $version from Cargo.toml" has "^ Version: $version" "$work/info"
check "control: Architecture amd64" has '^ Architecture: amd64$' "$work/info"
check "control: Depends adduser, nothing else (static binary)" has '^ Depends: adduser$' "$work/info"
check "control: Section net, a Maintainer, a Description" sh -c "grep -q '^ Section: net' '$work/info' && grep -q '^ Maintainer: ' '$work/info' && grep -q '^ Description: ' '$work/info'"
check "maintainer scripts: postinst, prerm, postrm" sh -c "grep -q ' postinst' '$work/info' && grep -q ' prerm' '$work/info' && grep -q ' postrm' '$work/info'"
dpkg-deb -c "$DEB" >"$work/contents"
check "contents: ./usr/bin/wabridge, root 755" has '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/wabridge$' "$work/contents"
check "contents: the systemd unit" has ' \./usr/lib/systemd/system/wabridge\.service$' "$work/contents"
check "contents: ./etc/wabridge/wabridge.env, 640" has '^-rw-r----- (root/root|0/0) .* \./etc/wabridge/wabridge\.env$' "$work/contents"
check "contents: the service's nsswitch.conf (static glibc: files and dns only)" has ' \./usr/share/wabridge/nsswitch\.conf$' "$work/contents"
check "contents: install.md, simulate.md, the example TOML" sh -c "grep -q 'usr/share/doc/wabridge/install.md' '$work/contents' && grep -q 'usr/share/doc/wabridge/simulate.md' '$work/contents' && grep -q 'usr/share/doc/wabridge/examples/wabridge.toml' '$work/contents'"
mkdir "$work/control"
dpkg-deb -e "$DEB" "$work/control"
check "conffiles: /etc/wabridge/wabridge.env" grep -qx /etc/wabridge/wabridge.env "$work/control/conffiles"
check "postinst enables the unit (deb-systemd-helper)" has 'deb-systemd-helper' "$work/control/postinst"
check "postrm keeps the data dir unless WABRIDGE_PURGE_DATA=yes" has 'WABRIDGE_PURGE_DATA' "$work/control/postrm"

# --- install, on a clean slate
if dpkg -s wabridge >/dev/null 2>&1; then dpkg_retry dpkg --purge wabridge >/dev/null; fi
if getent passwd wabridge >/dev/null; then userdel wabridge 2>/dev/null; fi
if getent group wabridge >/dev/null; then groupdel wabridge 2>/dev/null; fi
rm -rf /var/lib/wabridge /etc/wabridge
check "dpkg -i installs it" dpkg_retry dpkg -i "$DEB"
check "/usr/bin/wabridge runs" /usr/bin/wabridge --version
UNIT=/lib/systemd/system/wabridge.service
check "$UNIT is there" test -f "$UNIT"
check "the unit is enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/wabridge.service
check "/etc/wabridge/wabridge.env is root:wabridge 640" test "$(stat -c '%U:%G %a' /etc/wabridge/wabridge.env)" = "root:wabridge 640"
IFS=: read -r u_name _ u_uid _ _ u_home u_shell < <(getent passwd wabridge)
check "user wabridge exists" test "${u_name:-}" = wabridge
check "user wabridge is a system account (uid < 1000)" test "${u_uid:-1000}" -lt 1000
check "user wabridge cannot log in, home /var/lib/wabridge" sh -c "test '${u_home:-}' = /var/lib/wabridge && case '${u_shell:-}' in */nologin|*/false) true ;; *) false ;; esac"
# verify prints nothing for a good unit; some versions mention the missing bus.
systemd-analyze verify "$UNIT" >"$work/verify" 2>&1
verify_rc=$?
grep -v -E 'Failed to connect to bus|not been booted|System has not been booted' "$work/verify" >"$work/verify.real"
check "systemd-analyze verify wabridge.service" sh -c "cat '$work/verify'; test $verify_rc -eq 0 && ! test -s '$work/verify.real'"
for directive in 'Type=notify' 'User=wabridge' 'StateDirectory=wabridge' \
  'EnvironmentFile=-/etc/wabridge/wabridge.env' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
  'ProtectHome=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
  'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  'SystemCallFilter=@system-service' 'Restart=on-failure' \
  'BindReadOnlyPaths=-/usr/share/wabridge/nsswitch.conf:/etc/nsswitch.conf'; do
  check "unit: $directive" grep -qx -- "$directive" "$UNIT"
done
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  echo "info  $(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | tail -1)"
fi

# --- the installed binary, run the way the unit runs it: as wabridge, in a
# state dir made the way StateDirectory= makes it, settings from the env file.
install -d -o wabridge -g wabridge -m 0700 /var/lib/wabridge
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cp /etc/wabridge/wabridge.env "$work/wabridge.env.orig"
healthy=no
# A port found free can be taken before wabridge binds it: then try another.
for attempt in 1 2 3; do
  port="$(free_port)"
  cp "$work/wabridge.env.orig" /etc/wabridge/wabridge.env
  echo "WABRIDGE_LISTEN=127.0.0.1:$port" >>/etc/wabridge/wabridge.env
  (as_service /usr/bin/wabridge serve) >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 100); do
    if (as_service /usr/bin/wabridge healthcheck --timeout 1s) >/dev/null 2>&1; then
      healthy=yes
      break
    fi
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$healthy" = yes ] || ! grep -q "Address already in use" "$work/serve.log"; then
    break
  fi
  wait "$serve_pid"
done
check "the installed service answers /healthz (wabridge healthcheck)" test "$healthy" = yes
check "it runs as wabridge with its data in /var/lib/wabridge" test "$(stat -c %U /var/lib/wabridge/wabridge.redb 2>&1)" = wabridge
check "the first start printed the admin token" grep -q 'admin token (shown once' "$work/serve.log"
check "it is the installed binary, running as wabridge" test "$(stat -c %U /proc/$serve_pid)" = wabridge
token="$(sed -n 's/^admin token (shown once, keep it safe): //p' "$work/serve.log")"
(WABRIDGE_ADMIN_TOKEN="$token" as_service /usr/bin/wabridge config check) >"$work/check.out" 2>&1
check_rc=$?
check "config check as the service's user asks the running server: no clientSecret yet (exit 1)" sh -c "cat '$work/check.out'; test $check_rc -eq 1 && grep -q 'in use by a running wabridge' '$work/check.out' && grep -q 'no clientSecret is stored' '$work/check.out'"
check "config check masks the admin token" sh -c "! grep -q -- '$token' '$work/check.out'"
(WABRIDGE_ADMIN_TOKEN="$token" as_service /usr/bin/wabridge backup --out /var/lib/wabridge/online-backup.redb) >"$work/backup.out" 2>&1
check "backup while the service runs (asks the server)" sh -c "cat '$work/backup.out'; grep -q 'taken from the running server' '$work/backup.out'"
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_rc=$?
check "SIGTERM stops it with exit 0" sh -c "cat '$work/serve.log'; test $serve_rc -eq 0"
check "backup of the stopped database, as root" sh -c "/usr/bin/wabridge backup --data-dir /var/lib/wabridge --out '$work/backup.redb' | grep 'taken from the stopped database'"

# --- remove, purge: the data dir is kept unless the admin asks
dpkg_retry dpkg -r wabridge >/dev/null 2>&1
check "dpkg -r removes the binary" test ! -e /usr/bin/wabridge
check "dpkg -r keeps the conffile" test -f /etc/wabridge/wabridge.env
dpkg_retry dpkg --purge wabridge >"$work/purge.out" 2>&1
check "purge removes the conffile" test ! -e /etc/wabridge/wabridge.env
check "purge keeps the data dir and says so" sh -c "cat '$work/purge.out'; test -f /var/lib/wabridge/wabridge.redb && grep -q 'kept the data dir' '$work/purge.out'"
chown root:root /var/lib/wabridge/wabridge.redb
dpkg_retry dpkg -i "$DEB" >/dev/null 2>&1
check "a reinstall hands the kept data dir back to wabridge" test "$(stat -c %U /var/lib/wabridge/wabridge.redb)" = wabridge
WABRIDGE_PURGE_DATA=yes dpkg_retry dpkg --purge wabridge >/dev/null 2>&1
check "purge with WABRIDGE_PURGE_DATA=yes removes the data dir" test ! -e /var/lib/wabridge

echo "packaging test took $(($(date +%s) - started)) s"
echo "packaging: $pass passed, $fail failed"
test "$fail" -eq 0
