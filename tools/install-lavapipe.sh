#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe, Debian/Ubuntu package mesa-vulkan-drivers)
# so that `--device wgpu` and its test run on a machine without a GPU. Idempotent: does nothing
# when a lavapipe ICD is already installed. Never fails the caller: without apt-get, or without
# root, it prints why and exits 0.
set -uo pipefail

icd_present() {
    compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" > /dev/null
}

if icd_present; then
    echo "lavapipe: already installed"
    exit 0
fi
if ! command -v apt-get > /dev/null; then
    echo "lavapipe: skipped (no apt-get on this system; install Mesa's Vulkan drivers by hand)"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
        sudo="sudo -n"
    else
        echo "lavapipe: skipped (not root and no password-less sudo)"
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends mesa-vulkan-drivers > /dev/null 2>&1; then
    # The package lists may be missing (fresh container): update once and retry.
    $sudo apt-get update > /dev/null 2>&1 || true
    if ! $sudo apt-get install -y --no-install-recommends mesa-vulkan-drivers > /dev/null 2>&1; then
        echo "lavapipe: skipped (apt-get install mesa-vulkan-drivers failed)"
        exit 0
    fi
fi
if icd_present; then
    echo "lavapipe: installed"
else
    echo "lavapipe: mesa-vulkan-drivers installed but no lavapipe ICD found"
fi
exit 0
