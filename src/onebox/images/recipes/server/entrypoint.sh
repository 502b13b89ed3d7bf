#!/bin/sh
set -eu
ssh-keygen -A >/dev/null
if [ -n "${ROOT_PASSWORD:-}" ]; then
    printf 'root:%s\n' "$ROOT_PASSWORD" | chpasswd
    printf 'PermitRootLogin yes\n' >/etc/ssh/sshd_config.d/onebox.conf
fi
exec "$@"
