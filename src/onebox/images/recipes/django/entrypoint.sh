#!/bin/sh
set -eu
python3 manage.py migrate --noinput
if [ -n "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
    python3 manage.py createsuperuser --noinput 2>/dev/null || echo "superuser already exists"
fi
exec "$@"
