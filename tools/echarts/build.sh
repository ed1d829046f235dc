#!/usr/bin/env bash
# Rebuild src/avloc/view/assets/echarts.min.js from the npm registry (needs node and npm;
# only when changing ECharts' version or the parts listed in entry.js, never at install time).
# The page draws segments and activation rows as custom series and mu as a line, with
# grids, tooltips, zoom, axis pointers and a graphic play head: entry.js imports only those.
# The full echarts.min.js is 1.1 MB.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-save --silent
./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --legal-comments=eof \
  --outfile=../../src/avloc/view/assets/echarts.min.js
{ echo "avloc/view/assets/echarts.min.js bundles Apache ECharts $(node -p 'require("echarts/package.json").version'),"
  echo "ZRender $(node -p 'require("zrender/package.json").version') and tslib; their licenses follow."
  echo; echo "==== Apache ECharts: NOTICE ===="; cat node_modules/echarts/NOTICE
  echo; echo "==== Apache ECharts: LICENSE ===="; cat node_modules/echarts/LICENSE
  echo; echo "==== ZRender: LICENSE ===="; cat node_modules/zrender/LICENSE
  echo; echo "==== tslib: LICENSE ===="; cat node_modules/tslib/LICENSE.txt
} > ../../src/avloc/view/assets/echarts-LICENSE.txt
