#!/bin/sh
# One-shot (temporalio/admin-tools), after the server is up: makes sure Docket's namespace exists and
# registers the custom search attributes its workflows set (workflows/search-attributes.ts). Every
# step tolerates "already there", so it runs on every `up`; it fails only on a real problem, e.g. an
# attribute that exists with another type.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_NAMESPACE_RETENTION:=72h}"
# name:type pairs; keep in step with SEARCH_ATTRIBUTE_NAMES in workflows/search-attributes.ts.
: "${DOCKET_SEARCH_ATTRIBUTES:=TenantId:Keyword EntityType:Keyword EntityId:Keyword Status:Keyword ObjectId:Keyword}"

# Resolve the host to an IPv4 address first: the server listens on 0.0.0.0 only, and a name that
# resolves to IPv6 first makes the CLI fail to connect.
host="${TEMPORAL_ADDRESS%:*}"
port="${TEMPORAL_ADDRESS##*:}"
ip="$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')" || true
address="${ip:-$host}:${port}"

t() { temporal "$@" --address "$address"; }

echo "init-cluster: waiting for Temporal at ${address} (${host})"
i=0
until t operator cluster health >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then echo "init-cluster: Temporal is not healthy" >&2; t operator cluster health; exit 1; fi
  sleep 2
done

if t operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "init-cluster: namespace ${TEMPORAL_NAMESPACE} exists"
else
  echo "init-cluster: creating namespace ${TEMPORAL_NAMESPACE} (retention ${TEMPORAL_NAMESPACE_RETENTION})"
  if ! out="$(t operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "$TEMPORAL_NAMESPACE_RETENTION" 2>&1)"; then
    case "$out" in
      *"already"*) echo "init-cluster: namespace ${TEMPORAL_NAMESPACE} already registered" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  # A new namespace reaches every frontend's cache within seconds; wait until it is visible.
  i=0
  until t operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 30 ]; then echo "init-cluster: namespace ${TEMPORAL_NAMESPACE} did not appear" >&2; exit 1; fi
    sleep 2
  done
fi

for pair in $DOCKET_SEARCH_ATTRIBUTES; do
  name="${pair%%:*}"
  type="${pair##*:}"
  i=0
  while :; do
    if out="$(t operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type" 2>&1)"; then
      echo "init-cluster: search attribute ${name} (${type}) registered"
      break
    fi
    case "$out" in
      *"different type"*) echo "$out" >&2; exit 1 ;;
      *"already exists"* | *"AlreadyExists"* | *"already registered"*) echo "init-cluster: search attribute ${name} already exists"; break ;;
      # A namespace just created is described at once but reaches the server's other caches within
      # seconds (the real server, on SQL persistence, answers "Namespace … is not found" until then).
      *"not found"*)
        i=$((i + 1))
        if [ "$i" -ge 30 ]; then echo "$out" >&2; exit 1; fi
        sleep 2 ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  done
done

# The API and the workers start after this job: make sure they will find every attribute.
i=0
while :; do
  listed="$(t operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" --output json 2>/dev/null || true)"
  missing=""
  for pair in $DOCKET_SEARCH_ATTRIBUTES; do
    name="${pair%%:*}"
    case "$listed" in *"\"${name}\""*) ;; *) missing="${missing} ${name}" ;; esac
  done
  [ -z "$missing" ] && break
  i=$((i + 1))
  if [ "$i" -ge 30 ]; then echo "init-cluster: search attributes not listed:${missing}" >&2; exit 1; fi
  sleep 2
done

echo "init-cluster: namespace ${TEMPORAL_NAMESPACE} ready with search attributes: ${DOCKET_SEARCH_ATTRIBUTES}"
