# Shared by scripts/serve, scripts/test and bench/: install what a fresh machine lacks.
# Debian/Ubuntu are handled (as root or through sudo); elsewhere the command to run is printed.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

apt_updated=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Please install: $*  (no apt-get on this machine)" >&2
    return 1
  fi
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The portal finds or starts PostgreSQL by itself (see README); it needs the server binaries
# unless DATABASE_URL is set or a password-less server answers on 127.0.0.1:5432.
have_postgres_binaries() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

ensure_postgres() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  have_postgres_binaries && return 0
  echo "==> PostgreSQL is not installed: installing the distribution's postgresql package" >&2
  if ! apt_install postgresql; then
    echo "Install PostgreSQL, then run this again:" >&2
    echo "  sudo apt-get install -y postgresql      # Debian, Ubuntu" >&2
    echo "  sudo dnf install -y postgresql-server   # Fedora" >&2
    echo "  brew install postgresql@15              # macOS" >&2
    exit 1
  fi
}

ensure_cargo_nextest() {
  command -v cargo-nextest >/dev/null 2>&1 && return 0
  echo "==> installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
}

# Debian's Chromium and ChromeDriver, for the browser tests.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  echo "==> installing chromium and chromium-driver" >&2
  apt_install chromium chromium-driver || { echo "Install Chromium and ChromeDriver (apt-get install chromium chromium-driver)" >&2; exit 1; }
}

# Poppler's pdftotext and pdftoppm, which read the invoice PDFs in the Rust and browser tests.
ensure_poppler() {
  command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 && return 0
  echo "==> installing poppler-utils (pdftotext, pdftoppm: the invoice PDFs' tests)" >&2
  apt_install poppler-utils || { echo "Install Poppler's tools (apt-get install poppler-utils)" >&2; exit 1; }
}

ensure_java() {
  command -v java >/dev/null 2>&1 && return 0
  echo "==> installing a Java runtime (for the W3C Nu HTML checker)" >&2
  apt_install default-jre-headless || { echo "Install Java 11 or newer (apt-get install default-jre-headless)" >&2; exit 1; }
}

ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
  echo "==> installing nodejs and npm" >&2
  apt_install nodejs npm || { echo "Install Node.js 18 or newer with npm" >&2; exit 1; }
}

# Python's venv module (Debian ships it apart), for the tools installed from PyPI.
ensure_python_venv() {
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  echo "==> installing python3-venv" >&2
  apt_install python3-venv || { echo "Install Python 3 with its venv module (apt-get install python3-venv)" >&2; exit 1; }
}
