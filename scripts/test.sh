#!/usr/bin/env bash
# Every check the issues name, on a fresh Debian/Ubuntu machine as root:
# installs the system packages it needs if missing, then fmt, clippy
# (-D warnings), docs, the licence check, the no_std check, the .nix syntax
# check, all tests (fuzz corpora included) and, where a nightly toolchain
# exists, short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export TSS2_LOG=${TSS2_LOG:-all+none}   # ESAPI prints expected TPM errors otherwise
MSRV=1.89
NO_STD_TARGET=thumbv7em-none-eabi
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
step() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS

step "system packages"
PKGS=(build-essential binutils pkg-config python3 openssl util-linux libtss2-dev swtpm swtpm-tools tpm2-tools nix-bin busybox-static pesign systemd
      qemu-system-x86 ovmf linux-image-amd64 systemd-boot-efi cpio fdisk dosfstools mtools)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install ${missing[*]}" >&2; exit 2; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "all present: ${PKGS[*]}"
fi

step "Rust toolchain (minimum $MSRV)"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install rustup (https://rustup.rs) and a stable toolchain >= $MSRV" >&2; exit 2
fi
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$MSRV" "$have" | sort -V | head -n1)" != "$MSRV" ]; then
  echo "rustc $have is older than $MSRV; run: rustup toolchain install stable && rustup default stable" >&2; exit 2
fi
echo "rustc $have"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "licences (permissive only)"
python3 scripts/check-licences.py --self-test
python3 scripts/check-licences.py
python3 scripts/check-licences.py --manifest-path fuzz/Cargo.toml

step "no_std: provenix-protocol and provenix-measured-boot for $NO_STD_TARGET"
if ! rustup target list --installed | grep -qx "$NO_STD_TARGET"; then
  rustup target add "$NO_STD_TARGET" || { echo "cannot add $NO_STD_TARGET: the no_std check cannot run" >&2; exit 1; }
fi
cargo check --locked -p provenix-protocol --no-default-features --target "$NO_STD_TARGET"
cargo check --locked -p provenix-measured-boot --target "$NO_STD_TARGET"

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --quiet

step "Nix files parse (the NixOS module, flake and VM tests need nixpkgs to run: README)"
nixfiles=(flake.nix $(find images -name '*.nix' | sort))
for f in "${nixfiles[@]}"; do nix-instantiate --parse "$f" >/dev/null; done
echo "${#nixfiles[@]} files: ${nixfiles[*]}"

step "cargo test (workspace, fuzz corpora replayed by stable tests)"
cargo test --locked --workspace

step "fuzzing"
if rustup toolchain list | grep -q '^nightly'; then
  if ! command -v cargo-fuzz >/dev/null; then
    echo "installing cargo-fuzz (nightly toolchain present)"
    cargo install cargo-fuzz --locked --quiet
  fi
  scratch=$(mktemp -d)
  for target in $(cd fuzz && cargo +nightly fuzz list); do
    echo "fuzz $target for ${FUZZ_SECONDS}s"
    # New inputs go to a scratch dir; the committed corpus is only read.
    mkdir -p "$scratch/$target"
    (cd fuzz && cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
       -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 1)
  done
  rm -rf "$scratch"
else
  echo "NOT RUN: no nightly toolchain here, so cargo-fuzz cannot run; the corpora were replayed by cargo test above"
fi

step "all checks passed in $((SECONDS - t0)) s"
