#!/bin/sh
# install-deps.sh — install everything Tributary needs to build, test and
# run its demo on Debian 12 (bookworm).  Run as root or with sudo.
set -eu
PKGS="
  build-essential autoconf automake libtool pkg-config
  libyaml-dev libpq-dev libhiredis-dev librdkafka-dev libpaho-mqtt-dev
  zlib1g-dev libcurl4-openssl-dev libopenblas-dev libpng-dev libmicrohttpd-dev libjemalloc-dev
  postgresql redis-server mosquitto mosquitto-clients kcat curl
  python3 python3-numpy dataset-fashion-mnist valgrind clang libclang-rt-14-dev
"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PKGS
