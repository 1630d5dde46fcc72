# Sourced by the scripts: installing what they need. Expects $root (the checkout).

# install_venv VENV REQUIREMENTS: a virtualenv .tools/VENV with scripts/REQUIREMENTS,
# (re)installed when its pins change.
install_venv() {
  local venv="$root/.tools/$1" requirements="$root/scripts/$2"
  if ! cmp -s "$requirements" "$venv/requirements.txt"; then
    echo "==> installing $2 into .tools/$1"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
  fi
}

# apt_install PACKAGE: installs Debian's PACKAGE, which only root may do; otherwise says
# what is missing and fails.
apt_install() {
  echo "==> installing $1 (apt)" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1 is missing: install Debian's $1 package (apt-get install $1) as root" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

# use_pinned_toolchain: the toolchain rust-toolchain.toml names. When rustup does not have
# it under that number but its stable toolchain is that very release (a machine with one
# toolchain and no access to the Rust download servers), the number is made to point at
# stable, as rustup would lay it out (rustup's own `toolchain link` refuses release names);
# otherwise rustup installs it as usual on the first cargo call.
use_pinned_toolchain() {
  command -v rustup >/dev/null 2>&1 || return 0
  local channel host sysroot
  channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$root/rust-toolchain.toml")
  [ -n "$channel" ] || return 0
  host=$(rustc +stable -vV 2>/dev/null | sed -n 's/^host: //p')
  if rustup toolchain list | grep -q "^$channel-$host"; then
    return 0
  fi
  if rustc +stable --version 2>/dev/null | grep -q "^rustc $channel "; then
    sysroot=$(rustc +stable --print sysroot)
    echo "==> toolchain $channel is the installed stable toolchain: pointing $channel at it"
    ln -s "$sysroot" "$(dirname "$sysroot")/$channel-$host"
  fi
}
