#!/usr/bin/env bash
# The C package for an aarch64 robot, end to end under qemu-user: installs
# the cross-built libsld into a prefix (scripts/install-sld.sh), compiles
# examples/c/localize.c with aarch64-linux-gnu-gcc against it (static), runs
# it on a beacon kit under qemu-aarch64 and checks the pose against the
# kit's truth (camera translation within 1 cm).
#
#   scripts/check-aarch64-package.sh LIB_DIR SLD
#     LIB_DIR  where `cargo build -p sld-ffi --target aarch64-unknown-linux-gnu` put libsld.a
#     SLD      a host `sld` binary (writes the kit)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lib_dir="${1:?LIB_DIR}"; sld="${2:?SLD}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$root/scripts/install-sld.sh" "$work/prefix" --lib-dir "$lib_dir" >/dev/null
aarch64-linux-gnu-readelf -h "$work/prefix/lib/libsld.so" | grep -q "AArch64" || { echo "libsld.so is not aarch64" >&2; exit 1; }
aarch64-linux-gnu-gcc -O2 "$root/examples/c/localize.c" -I"$work/prefix/include" \
  "$work/prefix/lib/libsld.a" -lpthread -ldl -lm -o "$work/localize"
"$sld" model beacons --out "$work/kit" >/dev/null
read -r _ _ fx fy cx cy _ < <(grep -v '^#' "$work/kit/truth.txt" | head -1)
out="$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/localize" "$work/kit/model.sld" "$work/kit/image.ppm" "$fx" "$fy" "$cx" "$cy")"
echo "$out"
want="$(grep -v '^#' "$work/kit/truth.txt" | sed -n 3p)"
got="$(echo "$out" | sed -n 's/^t = \[\(.*\)\] m$/\1/p')"
python3 - "$want" "$got" <<'PY'
import sys
want = [float(v) for v in sys.argv[1].split()]
got = [float(v) for v in sys.argv[2].split()]
err = max(abs(a - b) for a, b in zip(want, got)) if len(got) == 3 else float("inf")
print(f"aarch64 package: translation within {err * 100:.3f} cm of the truth")
sys.exit(0 if err < 0.01 else 1)
PY
