#!/usr/bin/env bash
# Builds Sentinel's packages into dist/, self-contained (no .NET runtime needed on the target, no network at install):
#   sentinel_<version>_<arch>.deb       Debian/Ubuntu: /usr/bin/sentinel, plugins, /etc/sentinel, the systemd unit,
#                                       a `sentinel` system user, man page, bash completion
#   sentinel-<version>-linux-<arch>.tar.gz   the same, for any distribution (see its README.txt)
#   sentinel.<version>.nupkg            the dotnet tool (needs the .NET 10 runtime): dotnet tool install -g sentinel --add-source dist/
# Usage: build/package.sh [VERSION] [amd64|arm64|all]   (default: the version of the build, amd64)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
version="${1:-$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)}"
case "${2:-amd64}" in
  amd64) archs=(amd64) ;;
  arm64) archs=(arm64) ;;
  all) archs=(amd64 arm64) ;;
  *) echo "usage: build/package.sh [VERSION] [amd64|arm64|all]" >&2; exit 2 ;;
esac
command -v dpkg-deb >/dev/null || { echo "error: dpkg-deb is needed (apt install dpkg)" >&2; exit 1; }
mkdir -p dist

# The portable build: plugins (loaded by the host of any architecture), and the man page and completion it prints.
dotnet build src/Engine/Sentinel.Host -c Release --nologo -v quiet "-clp:ErrorsOnly;NoSummary"
portable="dotnet artifacts/bin/Sentinel.Host/release/sentinel.dll"
work="artifacts/package"
rm -rf "$work"
mkdir -p "$work/plugins" "$work/share"
for p in src/Plugins/*/*.csproj; do
  dotnet build "$p" -c Release --nologo -v quiet "-clp:ErrorsOnly;NoSummary" -p:SentinelPluginOutput="$PWD/$work/plugins/"
done
# The dotnet tool (framework-dependent: for machines with the .NET 10 runtime): dotnet tool install -g sentinel --add-source dist/
dotnet pack src/Engine/Sentinel.Host -c Release -p:SentinelTool=true -p:SentinelToolPlugins="$PWD/$work/plugins/" -p:Version="$version" \
  -o dist --nologo -v quiet "-clp:ErrorsOnly;NoSummary"
echo "dist/sentinel.$version.nupkg"
$portable man | gzip -9n > "$work/share/sentinel.1.gz"
$portable completion bash > "$work/share/sentinel.bash"

for arch in "${archs[@]}"; do
  rid="linux-x64"; [ "$arch" = arm64 ] && rid="linux-arm64"
  echo "== $arch ($rid)"
  bin="$work/$rid"
  dotnet publish src/Engine/Sentinel.Host -c Release -r "$rid" --self-contained -p:Version="$version" -p:InvariantGlobalization=true \
    -o "$bin" --nologo -v quiet "-clp:ErrorsOnly;NoSummary"
  rm -f "$bin"/*.pdb

  # The .deb tree.
  root="$work/deb-$arch"
  install -d "$root/DEBIAN" "$root/usr/lib/sentinel" "$root/usr/bin" "$root/etc/sentinel/rules.d" "$root/etc/sentinel/plugins" "$root/lib/systemd/system" \
    "$root/usr/share/sentinel" "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/sentinel"
  cp -a "$bin/." "$root/usr/lib/sentinel/"
  cp -a "$work/plugins" "$root/usr/lib/sentinel/plugins"
  ln -s ../lib/sentinel/sentinel "$root/usr/bin/sentinel"
  install -m 0644 packaging/deb/sentinel.yaml "$root/etc/sentinel/sentinel.yaml"
  install -m 0644 packaging/deb/example-bot.yaml "$root/etc/sentinel/rules.d/example-bot.yaml"
  install -m 0644 config/systemd/sentinel.service "$root/lib/systemd/system/sentinel.service"
  install -m 0644 config/sentinel.schema.json "$root/usr/share/sentinel/sentinel.schema.json"
  install -m 0644 "$work/share/sentinel.1.gz" "$root/usr/share/man/man1/sentinel.1.gz"
  install -m 0644 "$work/share/sentinel.bash" "$root/usr/share/bash-completion/completions/sentinel"
  install -m 0644 README.md docs/*.md "$root/usr/share/doc/sentinel/"
  for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"; done
  printf '/etc/sentinel/sentinel.yaml\n/etc/sentinel/rules.d/example-bot.yaml\n' > "$root/DEBIAN/conffiles"
  size=$(du -sk "$root" | cut -f1)
  cat > "$root/DEBIAN/control" <<CONTROL
Package: sentinel
Version: $version
Architecture: $arch
Maintainer: Sentinel developers <sentinel@localhost>
Installed-Size: $size
Depends: libc6, libgcc-s1, libstdc++6, zlib1g, libssl3 | libssl1.1, adduser
Section: admin
Priority: optional
Homepage: https://github.com/sentinel/sentinel
Description: health checks, self-healing and alerting for the services on one box
 Sentinel runs rules written in YAML: probes (process alive, HTTP health, log
 errors, log growth, TCP/TLS/DNS reachability, memory, Nagios plugins), restarts
 with backoff and a budget, and alerts by email, SMS and webhooks, with a
 dead-man's switch. Self-contained: no .NET runtime needed.
CONTROL
  dpkg-deb --root-owner-group --build "$root" "dist/sentinel_${version}_${arch}.deb" >/dev/null
  echo "dist/sentinel_${version}_${arch}.deb"

  # The tarball: one folder, run from anywhere.
  name="sentinel-$version-linux-${arch/amd64/x64}"
  tree="$work/$name"
  mkdir -p "$tree/config/rules.d" "$tree/config/plugins"
  cp -a "$bin/." "$tree/"
  cp -a "$work/plugins" "$tree/plugins"
  cp packaging/deb/sentinel.yaml "$tree/config/sentinel.yaml"
  cp packaging/deb/example-bot.yaml "$tree/config/rules.d/"
  cp config/systemd/sentinel.service config/sentinel.schema.json "$work/share/sentinel.1.gz" "$work/share/sentinel.bash" "$tree/"
  cat > "$tree/README.txt" <<README
Sentinel $version for Linux ($arch), self-contained.
  ./sentinel run --config config/sentinel.yaml     # state and logs in config/state and config/logs
  ./sentinel --help, ./sentinel man | man -l -
To install as a service, copy this folder to /usr/lib/sentinel, link /usr/bin/sentinel to it, put the config in
/etc/sentinel and sentinel.service in /etc/systemd/system (see docs/operations.md); or use the .deb.
README
  tar -C "$work" -czf "dist/$name.tar.gz" "$name"
  echo "dist/$name.tar.gz"
done
