#!/bin/sh
# First start of an empty data directory: root password, database, user and init
# scripts, done on a server that listens on no network, so health checks stay red.
set -eu
root_pw="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
database="${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}"
user="${MARIADB_USER:-${MYSQL_USER:-}}"
password="${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}"
datadir=/var/lib/mysql
socket=/run/mysqld/init.sock

quote() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }

initialise() {
    if [ -z "$root_pw" ]; then
        echo "error: set MARIADB_ROOT_PASSWORD (the database is empty and needs one)" >&2
        exit 1
    fi
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    mariadbd --user=mysql --skip-networking --socket="$socket" &
    pid=$!
    tries=0
    until mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || { echo "error: the first start did not answer" >&2; exit 1; }
        sleep 0.1
    done
    {
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(quote "$root_pw")';"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(quote "$root_pw")';"
        echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [ -n "$database" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$database\`;"; fi
        if [ -n "$user" ]; then
            echo "CREATE USER '$(quote "$user")'@'%' IDENTIFIED BY '$(quote "$password")';"
            if [ -n "$database" ]; then
                echo "GRANT ALL ON \`$database\`.* TO '$(quote "$user")'@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$socket" -uroot
    export MYSQL_PWD="$root_pw"
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) echo "running $script"; mariadb --socket="$socket" -uroot $database <"$script" ;;
            *.sh) echo "running $script"; . "$script" ;;
        esac
    done
    mariadb-admin --socket="$socket" -uroot shutdown
    wait "$pid"
    unset MYSQL_PWD
}

if [ "${1:-}" = mariadbd ]; then
    mkdir -p /run/mysqld
    chown -R mysql:mysql "$datadir" /run/mysqld
    if [ ! -d "$datadir/mysql" ]; then initialise; fi
    exec "$@" --user=mysql
fi
exec "$@"
