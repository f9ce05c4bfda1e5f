#!/usr/bin/env bash
# Installs the Debian packages the grader needs: the offline Fashion-MNIST data set, headless
# Chromium (report checks), poppler-utils (PDF -> PNG) and the Pango/fonts WeasyPrint renders with.
# Idempotent: packages already present are not touched. Without root or apt-get it explains
# what to do instead and carries on (the grader then falls back to Keras' own download).
set -euo pipefail
packages=(dataset-fashion-mnist chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  cat >&2 <<MSG
setup: these system packages are missing: ${missing[*]}
  - On Debian/Ubuntu, run as root:  apt-get install ${missing[*]}
  - Elsewhere: install Pango (WeasyPrint needs it) and, for the browser tests, Chromium;
    Fashion-MNIST is then downloaded by Keras into ~/.keras/datasets/ on first use
    (needs internet), or point GRADER_DATA_DIR at a folder with the four .gz files.
MSG
fi
