#!/usr/bin/env bash
# web-vendor.sh fetches the page's third-party libraries again, exactly at the
# versions listed in api/web/vendor/VERSIONS (run by `make web-vendor`; needs
# npm, which nothing else in the build does). Each tarball must match both the
# sha512 pinned in VERSIONS and the registry's dist.integrity, so a changed
# upload is noticed rather than committed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
vendor=$root/api/web/vendor
manifest=$vendor/VERSIONS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A pinned unpacked
while read -r kind pkg rest; do
	[[ $kind == integrity ]] && pinned[$pkg]=$rest
done < <(grep -v '^\s*\(#\|$\)' "$manifest")

unpack() { # unpack PKG@VERSION: npm pack it once, check it, print its directory
	local pkg=$1
	if [[ -z ${unpacked[$pkg]:-} ]]; then
		local dir=$tmp/$(echo "$pkg" | tr '/@' '__')
		mkdir -p "$dir"
		local tgz
		tgz=$(cd "$dir" && npm pack --silent "$pkg" | tail -n1)
		local got="sha512-$(openssl dgst -sha512 -binary "$dir/$tgz" | base64 -w0)"
		local registry
		registry=$(npm view "$pkg" dist.integrity)
		if [[ $got != "${pinned[$pkg]:-}" || $got != "$registry" ]]; then
			echo "web-vendor: $pkg: tarball $got, pinned ${pinned[$pkg]:-none}, registry $registry" >&2
			exit 1
		fi
		tar xzf "$dir/$tgz" -C "$dir"
		unpacked[$pkg]=$dir/package
	fi
}

count=0
while read -r kind pkg src dest; do
	[[ $kind == file ]] || continue
	unpack "$pkg"
	dir=${unpacked[$pkg]}
	shopt -s nullglob
	matches=("$dir"/$src)
	shopt -u nullglob
	if [[ ${#matches[@]} -eq 0 ]]; then
		echo "web-vendor: $pkg has no $src" >&2
		exit 1
	fi
	for f in "${matches[@]}"; do
		if [[ $dest == */ ]]; then out=$vendor/$dest$(basename "$f"); else out=$vendor/$dest; fi
		mkdir -p "$(dirname "$out")"
		cp "$f" "$out"
		count=$((count + 1))
		# Scripts and stylesheets are served gzipped from a copy made here,
		# once (see api/web.go).
		case $out in *.js | *.mjs | *.css) gzip -9 -n -k -f "$out" ;; esac
	done
done < <(grep -v '^\s*\(#\|$\)' "$manifest")
echo "web-vendor: $count files copied into api/web/vendor/, scripts and stylesheets with their .gz"
