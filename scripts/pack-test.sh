#!/usr/bin/env bash
# npm run test:pack: the published package works on a machine with no toolchain. Packs omniseg
# (with the prebuilds `npm run prebuild` wrote), installs the tarball into a fresh project with a
# PATH that holds only node and npm (no compiler, make, cmake or Python: a source build would
# fail), and there
#   1. checks that the install kept the prebuild (no build/ in the installed package);
#   2. segments the tiny checkpoint through the library and checks the masks against the
#      transformers reference and the addon file the process mapped (scripts/pack-check.mjs);
#   3. segments it with the CLI (`npx omniseg segment ... --json`);
#   4. installs a CUDA build that cannot work here as the CUDA prebuild (the local
#      build-cuda/Release/omniseg.node where there is one, else a file that is not a library) and
#      checks the fallback to the CPU with its reason; then OMNISEG_DEVICE=cpu.
# Needs the npm registry (the package's dependencies; sharp brings its own prebuilt binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
fixtures=$repo/test/fixtures/sam-tiny
tuple=$(node -p 'process.platform + "-" + process.arch')

say() { echo "pack-test: $*"; }
fail() { echo "pack-test: FAIL: $*" >&2; exit 1; }
compgen -G "prebuilds/$tuple/*.node" >/dev/null || { echo "pack-test: no prebuilds/$tuple/*.node; run npm run prebuild first" >&2; exit 2; }

work=$(mktemp -d -t omniseg-pack-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The tarball (npm pack runs `prepare`, the TypeScript build).
tarball=$work/$(npm pack --silent --pack-destination "$work" | tail -n 1)
tar -tzf "$tarball" >"$work/contents"
grep -q "^package/prebuilds/$tuple/omniseg\..*node$" "$work/contents" || fail "$tarball holds no prebuilds/$tuple/"
say "$(basename "$tarball"): $(du -h "$tarball" | cut -f1)"

# A PATH with node and npm only; everything else runs in an environment with just that PATH,
# HOME and the npm / proxy settings. npm runs lifecycle scripts with `sh` from the PATH unless
# script-shell names one.
mkdir "$work/bin"
for tool in node npm npx; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
keep=(HOME="$HOME" PATH="$work/bin" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8 npm_config_script_shell=/bin/sh)
while IFS='=' read -r name value; do
  keep+=("$name=$value")
done < <(env | grep -E '^(https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|(npm_config|NPM_CONFIG)_(registry|cache|userconfig|cafile|strict_ssl))=' || true)
run() { env -i "${keep[@]}" "$@"; }
for tool in gcc g++ cc c++ make cmake python3 python; do
  if run /bin/sh -c "command -v $tool" >/dev/null; then fail "$tool is reachable with PATH=$work/bin"; fi
done

app=$work/app
mkdir "$app"
echo '{ "name": "omniseg-pack-test", "version": "1.0.0", "private": true }' >"$app/package.json"
start=$SECONDS
(cd "$app" && run npm install --no-audit --no-fund --foreground-scripts "$tarball") >"$work/install.log" 2>&1 ||
  { tail -n 40 "$work/install.log" >&2; fail "npm install of the tarball failed"; }
say "installed into a fresh project with PATH=node+npm only in $((SECONDS - start)) s"
pkg=$app/node_modules/omniseg
[ ! -e "$pkg/build" ] || fail "the install built the addon from source ($pkg/build exists)"

# The library: masks vs the reference, the addon's file.
cp "$repo/scripts/pack-check.mjs" "$app/"
check() { (cd "$app" && run "$@" node pack-check.mjs "$fixtures"); }
out=$(check) || fail "pack-check.mjs"
say "library: $out"

# The CLI.
cli=$(cd "$app" && run npx --no-install omniseg segment "$fixtures/wide.png" --model "$fixtures/model" --point 75,50,1 --json) ||
  fail "omniseg segment"
run node -e 'const r = JSON.parse(process.argv[1]);
  if (r.width !== 150 || r.height !== 100 || r.masks.length !== 1 || !(r.masks[0].area > 0)) process.exit(1);' "$cli" ||
  fail "omniseg segment --json printed ${cli:0:200}"
say "cli: omniseg segment --json: $(run node -p 'const r = JSON.parse(process.argv[1]); `${r.width}x${r.height}, mask area ${r.masks[0].area}`' "$cli")"

# The CUDA variant: a build that cannot work on this machine must cost only a fallback.
cudadir=$pkg/prebuilds/cuda/$tuple
mkdir -p "$cudadir"
if [ -f build-cuda/Release/omniseg.node ]; then
  cp build-cuda/Release/omniseg.node "$cudadir/omniseg.node"
  kind="the local CUDA build"
else
  echo 'not a shared library' >"$cudadir/omniseg.node"
  kind="a file that is not a shared library"
fi
out=$(check) || fail "pack-check.mjs with $kind as the CUDA prebuild"
run node -e 'const r = JSON.parse(process.argv[1]);
  const ok = r.cuda.compiled && (r.cuda.available ? r.device === "cuda" : r.device === "cpu" && r.cuda.reason.length > 0);
  process.exit(ok ? 0 : 1);' "$out" || fail "with $kind as the CUDA prebuild: $out"
say "cuda prebuild ($kind): $(run node -p 'const { cuda, device } = JSON.parse(process.argv[1]); `ran on ${device}; cuda: ${cuda.available ? "available" : cuda.reason}`' "$out")"

out=$(check OMNISEG_DEVICE=cpu) || fail "pack-check.mjs with OMNISEG_DEVICE=cpu"
run node -e 'const r = JSON.parse(process.argv[1]); process.exit(r.device === "cpu" && r.cuda.reason === "OMNISEG_DEVICE=cpu" ? 0 : 1);' "$out" ||
  fail "OMNISEG_DEVICE=cpu: $out"
say "OMNISEG_DEVICE=cpu: ran on the CPU"
say "ok"
