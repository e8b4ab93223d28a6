#!/usr/bin/env bash
# Install (if missing) and start the backing services used by Bastion's tests (and the
# build tools of the mysqlclient driver the tests use):
#   PostgreSQL 15  127.0.0.1:5432  user bastion / password bastion / db bastion_test
#   MariaDB        127.0.0.1:3306  user bastion / password bastion / db bastion_test
#   Redis          127.0.0.1:6379  no password
#
# Usage: scripts/services.sh [start|stop|status]     (default: start)
#
# Works without systemd (containers, CI sandboxes): services are started
# directly and polled until they answer. Safe to run repeatedly.
# Needs root (apt-get, starting daemons as their service users).
#
# Environment:
#   SERVICES_TIMEOUT  seconds to wait for each service to answer (default 60)
set -euo pipefail

ACTION="${1:-start}"
TIMEOUT="${SERVICES_TIMEOUT:-60}"

PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
MY_PORT=3306
REDIS_PORT=6379
HOST=127.0.0.1
DB_USER=bastion
DB_PASS=bastion
DB_NAME=bastion_test

PG_CONF_D=/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}/conf.d/99-bastion.conf
MY_CNF=/etc/mysql/mariadb.conf.d/99-bastion.cnf
REDIS_PIDFILE=/run/redis/redis-server.pid
REDIS_LOG=/var/log/redis/redis-server.log

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# wait_for NAME CMD... : poll CMD once a second until it succeeds or TIMEOUT.
wait_for() {
    local name="$1"; shift
    local i
    for ((i = 0; i < TIMEOUT; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    die "$name did not answer within ${TIMEOUT}s"
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

# ---------------------------------------------------------------- install ----
install_missing() {
    local missing=()
    pkg_installed "postgresql-${PG_VERSION}" || missing+=(postgresql)
    pkg_installed mariadb-server || missing+=(mariadb-server)
    pkg_installed redis-server || missing+=(redis-server)
    # the test suite's mysqlclient driver builds against libmysqlclient
    pkg_installed default-libmysqlclient-dev || missing+=(default-libmysqlclient-dev)
    pkg_installed pkg-config || missing+=(pkg-config)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    # Keep package scripts from starting daemons themselves: this script
    # starts them with its own settings below.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}"
    } || rc=$?
    if [ "$made_policy" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
}

# ------------------------------------------------------------- postgresql ----
pg_running() { pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; }
pg_ready() { pg_isready -q -h "$HOST" -p "$PG_PORT"; }
pg_psql() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }

pg_start() {
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "${PG_VERSION}/${PG_CLUSTER}"; then
        log "postgresql: creating cluster ${PG_VERSION}/${PG_CLUSTER}"
        pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
    fi
    # Loopback only, fixed port. Restart if a running cluster had other values.
    # listen_addresses goes in a conf.d drop-in (read after postgresql.conf).
    local changed=0 want
    want="listen_addresses = '${HOST}'"
    if [ ! -f "$PG_CONF_D" ] || [ "$(cat "$PG_CONF_D")" != "$want" ]; then
        printf '%s\n' "$want" >"$PG_CONF_D"
        chown postgres:postgres "$PG_CONF_D"
        changed=1
    fi
    if [ "$(pg_conftool -s "$PG_VERSION" "$PG_CLUSTER" get port 2>/dev/null || true)" != "$PG_PORT" ]; then
        pg_conftool "$PG_VERSION" "$PG_CLUSTER" set port "$PG_PORT"
        changed=1
    fi
    # Without systemd-tmpfiles nobody creates the socket directory.
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    if pg_running; then
        if [ "$changed" -eq 1 ]; then
            log "postgresql: configuration changed, restarting"
            pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
        fi
    else
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
    fi
    wait_for postgresql pg_ready

    # Role and database (re-applied every run so the password is always right).
    pg_psql -d postgres <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DB_USER}') THEN
        CREATE ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASS}' CREATEDB;
    ELSE
        ALTER ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASS}' CREATEDB;
    END IF;
END
\$\$;
SQL
    if [ "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")" != "1" ]; then
        pg_psql -d postgres -c "CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}"
    fi
    PGPASSWORD="$DB_PASS" psql -X -q -h "$HOST" -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" -tAc 'SELECT 1' >/dev/null \
        || die "postgresql: cannot log in as ${DB_USER} over ${HOST}:${PG_PORT}"
    log "postgresql: OK  ${HOST}:${PG_PORT}  user=${DB_USER} db=${DB_NAME} ($(pg_psql -d postgres -tAc 'SHOW server_version'))"
}

pg_stop() {
    if pg_running; then
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop
        log "postgresql: stopped"
    else
        log "postgresql: not running"
    fi
}

# ---------------------------------------------------------------- mariadb ----
my_ping() { mysqladmin --protocol=socket -uroot ping; }
my_tcp_ping() { mysqladmin --protocol=tcp -h "$HOST" -P "$MY_PORT" -u"$DB_USER" -p"$DB_PASS" ping; }
my_sql() { mysql --protocol=socket -uroot "$@"; }

my_start() {
    local want
    want=$(printf '[mysqld]\nbind-address = %s\nport = %s\n' "$HOST" "$MY_PORT")
    local changed=0
    if [ ! -f "$MY_CNF" ] || [ "$(cat "$MY_CNF")" != "$want" ]; then
        printf '%s\n' "$want" >"$MY_CNF"
        changed=1
    fi
    install -d -o mysql -g mysql -m 755 /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        log "mariadb: initialising data directory"
        mysql_install_db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if my_ping >/dev/null 2>&1; then
        if [ "$changed" -eq 1 ]; then
            log "mariadb: configuration changed, restarting"
            mysqladmin --protocol=socket -uroot shutdown
            sleep 1
        else
            :
        fi
    fi
    if ! my_ping >/dev/null 2>&1; then
        # mysqld_safe supervises mariadbd; detach it fully from this shell.
        setsid mysqld_safe </dev/null >/dev/null 2>&1 &
    fi
    wait_for mariadb my_ping

    my_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${DB_NAME}\`;
CREATE USER IF NOT EXISTS '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
CREATE USER IF NOT EXISTS '${DB_USER}'@'127.0.0.1' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'127.0.0.1' IDENTIFIED BY '${DB_PASS}';
GRANT ALL PRIVILEGES ON \`${DB_NAME}\`.* TO '${DB_USER}'@'localhost';
GRANT ALL PRIVILEGES ON \`${DB_NAME}\`.* TO '${DB_USER}'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
    mysql --protocol=tcp -h "$HOST" -P "$MY_PORT" -u"$DB_USER" -p"$DB_PASS" "$DB_NAME" -Nse 'SELECT 1' >/dev/null \
        || die "mariadb: cannot log in as ${DB_USER} over ${HOST}:${MY_PORT}"
    log "mariadb: OK  ${HOST}:${MY_PORT}  user=${DB_USER} db=${DB_NAME} ($(my_sql -Nse 'SELECT VERSION()'))"
}

my_stop() {
    if my_ping >/dev/null 2>&1; then
        mysqladmin --protocol=socket -uroot shutdown
        log "mariadb: stopped"
    else
        log "mariadb: not running"
    fi
}

# ------------------------------------------------------------------ redis ----
redis_ping() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

redis_start() {
    if ! redis_ping; then
        install -d -o redis -g redis -m 2755 /run/redis
        install -d -o redis -g adm -m 2750 /var/log/redis
        install -d -o redis -g redis -m 750 /var/lib/redis
        # No config file: every setting that matters is given here.
        runuser -u redis -- redis-server \
            --bind "$HOST" --port "$REDIS_PORT" --protected-mode yes \
            --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
            --dir /var/lib/redis --save '' --appendonly no
    fi
    wait_for redis redis_ping
    log "redis: OK  ${HOST}:${REDIS_PORT}  no password ($(redis-cli -h "$HOST" -p "$REDIS_PORT" info server | tr -d '\r' | sed -n 's/^redis_version:/v/p'))"
}

redis_stop() {
    if redis_ping; then
        redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        wait_for "redis shutdown" bash -c "! redis-cli -h $HOST -p $REDIS_PORT ping"
        log "redis: stopped"
    else
        log "redis: not running"
    fi
}

# ------------------------------------------------------------------- main ----
status() {
    local s
    s=down; pg_ready 2>/dev/null && s=up; log "postgresql: $s"
    s=down; my_ping >/dev/null 2>&1 && s=up; log "mariadb: $s"
    s=down; redis_ping && s=up; log "redis: $s"
}

case "$ACTION" in
    start)
        install_missing
        pg_start
        my_start
        redis_start
        ;;
    stop)
        pg_stop
        my_stop
        redis_stop
        ;;
    status)
        status
        ;;
    *)
        die "usage: $0 [start|stop|status]"
        ;;
esac
