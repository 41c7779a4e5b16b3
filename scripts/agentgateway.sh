#!/usr/bin/env bash
# Builds agentgateway (https://github.com/agentgateway/agentgateway), a peer MCP gateway, from
# its public source at the tag v1.2.0-alpha.2, so the HTTP load test can run it next to
# mcp-policy (issue #30) with the config template benches/peers/agentgateway.yaml.tmpl.
#
# usage: bash scripts/agentgateway.sh [SRC]     (or AGENTGATEWAY_SRC=SRC bash scripts/agentgateway.sh)
#   SRC   an agentgateway git checkout, or a bare git dir, that has the tag (e.g. a mirror's
#         `repo` directory: /work/.mirror/agentgateway+agentgateway/repo)
#   AGENTGATEWAY_WORK     where the tag is exported (default target/peers/agentgateway-src)
#   AGENTGATEWAY_TARGET   its CARGO_TARGET_DIR          (default target/peers/agentgateway-target)
#   CARGO_BUILD_JOBS      default 2
# The last line of standard output is the built binary's path (everything else goes to stderr).
#
# Not part of `cargo test` or CI: CI cannot reach agentgateway's source (nor the git forks its
# manifest patches in), and a clean build takes 14–26 minutes on two cores (14 min 11 s in
# the last run). It is run by hand, once per machine; the bench takes the binary's path from
# this script's last line, renders the config template's placeholders, and starts the binary
# with `-f <config>`.
#
# Steps:
#   1. export the tag into the work dir (skipped when the work dir already holds this export, so
#      a re-run keeps its files' timestamps and cargo's incremental build is reused);
#   2. edit the workspace manifest so that everything comes from crates.io (each change is
#      explained where it is made, below) and write one small local crate, http-serde-compat;
#   3. `cargo build --profile quick-release -p agentgateway-app` with its own target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

tag=v1.2.0-alpha.2
# Bump when the edits below change, so that an old work dir is exported and edited afresh.
edits_version=1

src=${1:-${AGENTGATEWAY_SRC:-}}
if [ -z "$src" ]; then
  echo "usage: $0 SRC   (SRC: an agentgateway git checkout or bare git dir with the tag $tag;" >&2
  echo "                 or set AGENTGATEWAY_SRC)" >&2
  exit 2
fi
work=${AGENTGATEWAY_WORK:-$repo/target/peers/agentgateway-src}
target_dir=${AGENTGATEWAY_TARGET:-$repo/target/peers/agentgateway-target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

# `git -C` works both in a checkout and in a bare git dir.
commit=$(git -C "$src" rev-parse --verify --quiet "$tag^{commit}") || {
  echo "agentgateway: $src has no tag $tag" >&2
  exit 1
}
stamp="$tag $commit edits=$edits_version"

# 1. Export.
if [ "$(cat "$work/.export-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "agentgateway: exporting $tag ($commit) to $work" >&2
  rm -rf "$work"
  mkdir -p "$work"
  git -C "$src" archive --format=tar "$commit" | tar -x -C "$work"

  # 2. The manifest. At this tag the workspace's [patch.crates-io] takes three crates from git
  # forks, which this machine (and CI) cannot fetch. Each edit must match exactly once, so a
  # different tag fails here rather than building something else.
  python3 - "$work/Cargo.toml" <<'PY'
import re
import sys

path = sys.argv[1]
text = open(path).read()

def edit(pattern, replacement, what):
    global text
    text, n = re.subn(pattern, replacement, text, flags=re.M)
    if n != 1:
        sys.exit(f"agentgateway: manifest edit '{what}' matched {n} times, expected 1")

# The [patch.crates-io] section: schemars, http-serde and wiremock from forks. Dropped; the
# three crates are handled one by one below.
edit(r'^\[patch\.crates-io\]\n'
     r'schemars = \{ git = [^\n]*\n'
     r'http-serde = \{ git = [^\n]*\n'
     r'wiremock = \{ git = [^\n]*\n',
     '', 'patch section')

# schemars: the workspace dependency also names the fork's git source; the crates.io release
# of the same version is used instead. The fork adds an `arcstr1` feature (JsonSchema for
# ArcStr) that crates.io's schemars lacks, so that feature is dropped. schemars is only used
# by agentgateway's optional `schema` feature (JSON schema generation), which the binary does
# not enable.
edit(r'^(schemars = \{ version = "=1\.0\.4", )git = "[^"]*", rev = "[^"]*", ',
     r'\1', 'schemars git source')
edit(r'^ *"arcstr1",\n', '', 'schemars arcstr1 feature')

# crates/xtask generates the JSON schema (it enables `schema`, hence needs `arcstr1`); it is
# a developer tool, not part of the gateway, so it leaves the workspace.
edit(r'^ *"crates/xtask",\n', '', 'xtask member')

# wiremock: crates.io's 0.6 release has no `tls` feature (the fork adds one, with TLS test
# certificates). wiremock is only used by agentgateway's tests, which are not built here.
edit(r'^wiremock = \{ version = "0\.6", features = \["tls"\] \}$',
     'wiremock = "0.6"', 'wiremock tls feature')

# http-serde: the fork adds two modules agentgateway uses, `http_serde::header_name` and
# `http_serde::option::scheme`. The dependency is renamed to a local crate that re-exports
# crates.io's http-serde and adds those two modules (written by scripts/agentgateway.sh);
# agentgateway's code keeps writing `http_serde::...`.
edit(r'^http-serde = "2\.1"$',
     'http-serde = { package = "http-serde-compat", path = "local/http-serde-compat" }',
     'http-serde dependency')

open(path, "w").write(text)
PY

  # The local crate. Inside the workspace directory, so it joins the workspace as a path
  # dependency (and is built with the workspace's profiles).
  compat=$work/local/http-serde-compat
  mkdir -p "$compat/src"
  cat >"$compat/Cargo.toml" <<'TOML'
[package]
name = "http-serde-compat"
version = "0.0.0"
edition = "2021"
publish = false
description = "crates.io http-serde plus header_name and option::scheme (added by scripts/agentgateway.sh of mcp-policy)"

[dependencies]
http = "1"
http-serde = "=2.1.1"
serde = "1"
TOML
  cat >"$compat/src/lib.rs" <<'RS'
//! crates.io's `http-serde`, plus the two `#[serde(with = ...)]` modules agentgateway uses
//! that it lacks: `header_name` (for `http::HeaderName`) and `option::scheme` (for
//! `Option<http::uri::Scheme>`). Both are (de)serialized as strings.

pub use http_serde::{authority, header_map, http, method, status_code, uri, version};

/// `#[serde(with = "http_serde::header_name")]` for `http::HeaderName`.
pub mod header_name {
    use http::HeaderName;
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(name: &HeaderName, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(name.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<HeaderName, D::Error> {
        de.deserialize_str(NameVisitor)
    }

    struct NameVisitor;

    impl de::Visitor<'_> for NameVisitor {
        type Value = HeaderName;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an HTTP header name")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<HeaderName, E> {
            self.visit_bytes(v.as_bytes())
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<HeaderName, E> {
            HeaderName::from_bytes(v).map_err(E::custom)
        }
    }
}

/// `http_serde::option::*` for the types crates.io's http-serde covers, plus `scheme`.
pub mod option {
    pub use http_serde::option::*;

    /// `#[serde(with = "http_serde::option::scheme")]` for `Option<http::uri::Scheme>`.
    pub mod scheme {
        use http::uri::Scheme;
        use serde::{de, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(scheme: &Option<Scheme>, ser: S) -> Result<S::Ok, S::Error> {
            match scheme {
                Some(scheme) => ser.serialize_some(scheme.as_str()),
                None => ser.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Scheme>, D::Error> {
            match Option::<String>::deserialize(de)? {
                Some(s) => Scheme::try_from(s.as_str()).map(Some).map_err(de::Error::custom),
                None => Ok(None),
            }
        }
    }
}
RS
  echo "$stamp" >"$work/.export-stamp"
else
  echo "agentgateway: reusing $work ($tag)" >&2
fi

# 3. Build. The tag's rust-toolchain.toml pins channel "1.95", which rustup would try to
# download; the toolchain active here (mcp-policy's, stable) is used instead. The workspace's
# rust-version is 1.90.
if command -v rustup >/dev/null; then
  export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-$(cd "$repo" && rustup show active-toolchain | cut -d' ' -f1)}
fi
# The checkout's build script (crates/core/build.rs) records the git revision with
# `git rev-parse`: the export has no .git, so the ceiling stops git from finding mcp-policy's
# repository above it, and VERSION/GIT_REVISION give the tag and commit instead.
echo "agentgateway: building with $(rustc --version) (CARGO_TARGET_DIR=$target_dir, $CARGO_BUILD_JOBS jobs)" >&2
cd "$work"
GIT_CEILING_DIRECTORIES=$(dirname "$work") VERSION=$tag GIT_REVISION=$commit \
  CARGO_TARGET_DIR=$target_dir \
  cargo build --profile quick-release -p agentgateway-app >&2
bin=$target_dir/quick-release/agentgateway
"$bin" -V >&2
echo "$bin"
