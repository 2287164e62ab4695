#!/usr/bin/env bash
# Rebuild the browser phone's SIP library from npm (no CDN): JsSIP at the version pinned in
# scripts/jssip/package-lock.json, bundled by the pinned esbuild into one file the console
# serves itself, with the licences of everything inside it and its SRI hash.
# The output is committed; run this only to upgrade JsSIP (edit package.json, `npm install
# --package-lock-only`, then this script, then the tests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../web_console/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/jssip/package.json" "$here/jssip/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
version="$(node -p "require('$work/node_modules/jssip/package.json').version")"
"$work/node_modules/@esbuild/linux-x64/bin/esbuild" "$work/node_modules/jssip/lib/JsSIP.js" \
  --bundle --minify --format=iife --global-name=JsSIP --platform=browser --target=es2018 \
  --legal-comments=none --log-level=warning --outfile="$out/jssip.min.js"
{
  echo "web_console/static/vendor/jssip.min.js bundles JsSIP $version and its dependencies"
  echo "(built by scripts/vendor-jssip.sh from the npm registry; pinned in scripts/jssip/)."
  for pkg in jssip debug ms events sdp-transform; do
    dir="$work/node_modules/$pkg"
    v="$(node -p "require('$dir/package.json').version")"
    echo
    echo "==== $pkg $v ===="
    cat "$dir"/LICENSE* 2>/dev/null || cat "$dir"/license* 2>/dev/null || node -p "require('$dir/package.json').license"
  done
} >"$out/jssip.LICENSES.txt"
sri="sha384-$(openssl dgst -sha384 -binary "$out/jssip.min.js" | openssl base64 -A)"
printf '%s\n' "$sri" >"$out/jssip.min.js.sri"
echo "jssip $version -> $out/jssip.min.js ($sri)"
