#!/bin/sh
# `make run`: the service on its embedded SQLite default, for a developer.
# A random development secret is generated once into a 0600 file (the
# server itself has no default secret) and a bootstrap admin token printed.
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
mkdir -p oms-data
chmod 700 oms-data
secret_file=oms-data/dev-jwt-secret
if [ ! -s "$secret_file" ]; then
  umask 077
  head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$secret_file"
fi
chmod 600 "$secret_file"
unset JWT_SECRET
export JWT_SECRET_FILE="$secret_file"
token=$("$OMS_BIN" token --sub bootstrap-admin --roles admin --ttl 12h)
listen=${OMS_LISTEN:-127.0.0.1:8080}
cat <<MSG
OMS development server on http://$listen (database: ${DATABASE_URL:-sqlite:oms-data/oms.db})
Bootstrap admin token (12 h), signed with $secret_file:

  export OMS_TOKEN=$token
  curl -H "Authorization: Bearer \$OMS_TOKEN" http://$listen/api/v1/me

MSG
exec "$OMS_BIN" serve
