#!/usr/bin/env bash
# Debian packages the test suite needs: the ARM bare-metal toolchain (firmware image)
# and QEMU (the emulated STM32F405 for hardware-in-the-loop). Idempotent.
set -euo pipefail
need=()
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)  # builds l2f (the test extra) from its sdist
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
