#!/usr/bin/env bash
# A Python 3.11 base image made from Debian's packages, for machines that reach Debian's
# package mirror but no container registry (BentoML's default base, python:3.11-slim, cannot
# be pulled there). Cached per machine: the image in the engine's store is reused for as long
# as this script is unchanged (its hash is the image's label), so a rebuild costs nothing.
#
#   scripts/container/base_image.sh [ENGINE]     prints the image's name
#
# What the image holds: Debian bookworm minbase (what dpkg, apt and a shell need), python3.11
# with its venv module (the Bento's Dockerfile bootstraps uv from it; python3-distutils is named
# because debootstrap does not resolve the virtual python3.11-distutils that venv needs) and
# nothing else; apt's lists and caches, documentation and locales are dropped. Needs root and
# debootstrap. About 130 MB.
set -euo pipefail

engine="${1:-podman}"
name="${MODEL_BUNDLE_BASE_NAME:-localhost/model_bundle-base:bookworm-python3.11}"
suite=bookworm
recipe="$(sha256sum "$0" | cut -c1-16)"
label=org.model_bundle.base-recipe

if [ "$("$engine" image inspect --format "{{index .Config.Labels \"$label\"}}" "$name" \
    2> /dev/null)" = "$recipe" ]; then
  echo "$name"
  exit 0
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/model_bundle-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
echo "base_image.sh: debootstrap $suite into $rootfs (about 90 s)" >&2
# The mirror the host's apt uses, when it names one (debootstrap's default otherwise).
mirror="${DEBIAN_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2> /dev/null \
  | head -n1 | awk '{print $2}' || true)}"
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-distutils \
  "$suite" "$rootfs" ${mirror:+"$mirror"} > "$rootfs.log" 2>&1 \
  || { tail -n 5 "$rootfs.log" >&2; tail -n 40 "$rootfs/debootstrap/debootstrap.log" >&2;
       rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# `uv venv --python 3.11` and BentoML's tooling look for python3 on PATH.
ln -sf python3.11 "$rootfs/usr/bin/python3"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/root/.cache
"$engine" import \
  --change "LABEL $label=$recipe" \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
  --change 'CMD ["/usr/bin/python3.11"]' \
  - "$name" < <(tar -C "$rootfs" -c .) > /dev/null
echo "$name"
