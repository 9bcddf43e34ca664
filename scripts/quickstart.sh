#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: builds an example image with tsbuild.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh   # dockerd for the end-to-end tests (loopback only)
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp fixtures/quickstart/Dockerfile "$context/"
cp /bin/busybox "$context/busybox"
npx tsbuild build -t hello:v1 --progress plain "$context"
npx tsbuild images
npx tsbuild inspect hello:v1 | head -20
