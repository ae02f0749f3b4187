#!/bin/sh
# Prints the Debian version of the outpost package, made from
# `git describe --tags --always --dirty` and the date of the commit:
#
#   v1.2.3                     -> 1.2.3
#   v1.2.3-rc1                 -> 1.2.3~rc1                 (before 1.2.3)
#   v1.2.3-4-gabc1234          -> 1.2.3+git20250102030405.abc1234
#                                 (after 1.2.3, before 1.2.4)
#   abc1234 (no tag yet)       -> 0.0.0~git20250102030405.abc1234
#                                 (before any tagged release)
#   ...-dirty                  -> ...+dirty
#
# The date is the commit's (UTC, to the second), so later commits sort
# later. Usage: deb-version.sh [DESCRIBE DATE] (both from git when left out).
set -eu

if [ $# -ge 2 ]; then
	describe=$1
	date=$2
else
	describe=$(git describe --tags --always --dirty)
	date=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
fi

given=$describe
dirty=
case $describe in
*-dirty)
	dirty=+dirty
	describe=${describe%-dirty}
	;;
esac
describe=${describe#v}

# <tag>-<commits since the tag>-g<sha>, or a bare sha when there is no tag.
sha=
if expr "$describe" : '.*-[0-9][0-9]*-g[0-9a-f][0-9a-f]*$' >/dev/null; then
	sha=${describe##*-g}
	describe=${describe%-*-g*}
elif expr "$describe" : '[0-9a-f]\{4,\}$' >/dev/null &&
	! expr "$describe" : '[0-9]*$' >/dev/null; then
	sha=$describe
	describe=
fi

if [ -z "$describe" ]; then
	version="0.0.0~git$date.$sha"
else
	# A tag's pre-release part (1.2.3-rc1) sorts before the release.
	version=$(printf '%s' "$describe" | sed 's/-/~/g')
	if [ -n "$sha" ]; then
		version="$version+git$date.$sha"
	fi
fi
version="$version$dirty"

# A Debian upstream version: starts with a digit, then letters, digits and
# . + ~ only (no hyphen: the package has no Debian revision).
if ! expr "$version" : '[0-9][0-9A-Za-z.+~]*$' >/dev/null; then
	echo "deb-version.sh: cannot make a Debian version of '$given': got '$version'" >&2
	exit 1
fi
printf '%s\n' "$version"
