#!/bin/sh
# Builds outpost_<version>_<arch>.deb for each Debian architecture named
# (arm64, armhf, amd64) into $DEB_DIR, with nfpm (a Go tool of go.mod:
# `go tool nfpm`) and packaging/nfpm.yaml. Run from the repository root;
# `make deb` does. armhf is built for ARMv6 (GOARM=6) so that every Pi runs
# it, the Zero and the 1 included.
#
# Environment: GO (go), DEB_DIR (dist), DEB_VERSION (packaging/deb-version.sh),
# LDFLAGS (-ldflags of the build besides -s -w, e.g. -X main.version=...),
# DEB_MAINTAINER.
set -eu

GO=${GO:-go}
DEB_DIR=${DEB_DIR:-dist}
DEB_VERSION=${DEB_VERSION:-$(packaging/deb-version.sh)}
LDFLAGS=${LDFLAGS:-}
DEB_MAINTAINER=${DEB_MAINTAINER:-Outpost maintainers <outpost-gw@users.noreply.github.com>}
# The Debian revision: the package is <version>-1.
revision=1

if [ $# -eq 0 ]; then
	set -- arm64 armhf amd64
fi

# Files and dates from the commit, not the clock: the same commit gives the
# same package.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
changelog_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

repo=$(pwd)
mkdir -p "$DEB_DIR"
DEB_DIR=$(cd "$DEB_DIR" && pwd)
# nfpm runs in the build folder, outside the module, so by its path; this
# also builds it (into the Go build cache) when it is not there yet.
nfpm=$("$GO" tool -n nfpm)
build=$(mktemp -d "${TMPDIR:-/tmp}/outpost-deb.XXXXXX")
trap 'rm -rf "$build"' EXIT

# Shared by every architecture: the man page and the changelog (one entry,
# for the commit this package is built from).
gzip -9n <packaging/outpost.1 >"$build/outpost.1.gz"
cat >"$build/changelog.yaml" <<EOF
- semver: $DEB_VERSION-$revision
  date: $changelog_date
  packager: $DEB_MAINTAINER
  deb:
    urgency: medium
    distributions:
      - stable
  changes:
    - commit: $commit
      note: Build of commit $commit.
EOF

for arch in "$@"; do
	case $arch in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	armhf) goarch=arm goarm=6 ;;
	*)
		echo "build-deb.sh: unknown architecture '$arch' (want arm64, armhf or amd64)" >&2
		exit 2
		;;
	esac
	dir=$build/$arch
	mkdir -p "$dir"
	cp "$build/outpost.1.gz" "$build/changelog.yaml" "$dir/"
	ln -s "$repo/packaging" "$repo/configs" "$dir/"
	echo "== outpost $DEB_VERSION for $arch (GOARCH=$goarch${goarm:+ GOARM=$goarm})"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		"$GO" build -trimpath -ldflags "-s -w $LDFLAGS" -o "$dir/outpost" ./cmd/outpost
	(cd "$dir" &&
		OUTPOST_ARCH=$arch OUTPOST_VERSION=$DEB_VERSION OUTPOST_REVISION=$revision \
			OUTPOST_MAINTAINER=$DEB_MAINTAINER \
			"$nfpm" package --config packaging/nfpm.yaml --packager deb \
			--target "$DEB_DIR/outpost_$DEB_VERSION-${revision}_$arch.deb")
done
