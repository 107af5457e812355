#!/usr/bin/env bash
# System prerequisites: a JDK 17+ with javac (Kafka, Spark), a JDK 21+ (Apicurio), Maven, npm, Chromium, OpenSSL,
# PostgreSQL (the catalog of `finlake stack up --with trino`, its tests and the clusters' online store test).
# Installs what is missing from Debian's packages when run as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
# javac compiles finlake.spark.localfs (Hadoop's local file system without a process per file)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v npm >/dev/null || missing+=(npm)  # vendors the dashboard's chart library
[[ -x /usr/bin/chromium ]] || missing+=(chromium)  # the dashboard's browser test
command -v openssl >/dev/null || missing+=(openssl)  # the e2e API server's service-account keys
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
