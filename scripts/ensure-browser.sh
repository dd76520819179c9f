#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser build); the
# PDF corpus tests cross-check stamped files with qpdf and poppler's pdftoppm/pdfsig; the PKCS#11
# signing tests and bench/stamping.py sign with a key on a SoftHSM2 token.
# Install what is missing when this machine can (root with apt); otherwise those tests skip with a reason.
set -u
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v qpdf >/dev/null 2>&1 || missing+=(qpdf)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)  # pdfsig trusting the issuer's root
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's ${missing[*]} for the browser, PDF cross-check and PKCS#11 tests ..."
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get update -qq >/dev/null 2>&1 || true
  if timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    exit 0
  fi
fi
echo "${missing[*]} not available: the tests that need them will be skipped."
exit 0
