#!/usr/bin/env bash
# Assembles the Dockerfile's runtime image with buildah from local files and runs it (issue #12.2).
# There is no registry access here, so the base is not the pinned debian:bookworm-slim but the
# same Debian release's files from this host (checked: /etc/debian_version 12.x): /bin/bash, and
# the shared libraries bash and raygate load (ldd). On top, exactly what the runtime stage copies
# from the build stage (out/: /usr/local/bin/raygate and the `ray` -> raygate symlink) and its
# config (USER 65532:65532, ENTRYPOINT, CMD, EXPOSE).
#
# Then, in a container of the committed image as user 65532 (buildah run --isolation chroot: the
# OCI runtime crun cannot create containers in this sandbox), the entry points KubeRay uses:
#   /usr/local/bin/raygate --version
#   /bin/bash -c -- "ray kuberay-autoscaler --help"        (KubeRay < 1.7's autoscaler command)
#   /bin/bash -lc -- "ray kuberay-autoscaler --cluster-name c --cluster-namespace ns"
# the last one for real: the sidecar starts (KUBECONFIG names an API server on a closed port,
# with a CA: the image has no system roots, like a Pod, where the ServiceAccount's ca.crt is
# used), keeps retrying, and serves /healthz and /metrics on its admin port (the container shares
# the host's network) until the script stops it.
#
# Needs root, curl, openssl, python3 and `apt-get install buildah` (Debian 12: buildah 1.28).
# Not run by scripts/test.sh (docs/ci.md).
# Usage: scripts/buildah-image.sh [RAYGATE_BINARY]   (default: what scripts/dockerfile-replay.sh builds)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v buildah >/dev/null || { echo "buildah-image: no buildah (apt-get install buildah)" >&2; exit 1; }
grep -q '^12\.' /etc/debian_version 2>/dev/null \
  || { echo "buildah-image: the host is not Debian 12 (bookworm): its files would not stand in for debian:bookworm-slim" >&2; exit 1; }
bin="${1:-$(bash "$root/scripts/dockerfile-replay.sh")}"
[ -x "$bin" ] || { echo "buildah-image: $bin is not an executable" >&2; exit 1; }
export STORAGE_DRIVER=vfs
image="localhost/raygate:replay"

c="$(buildah from scratch)"
r=""
cleanup() { buildah rm "$c" >/dev/null 2>&1 || true; [ -z "$r" ] || buildah rm "$r" >/dev/null 2>&1 || true; }
trap cleanup EXIT
m="$(buildah mount "$c")"

# The base: bash, the dynamic loader and libraries, a passwd entry for the nonroot user.
for f in /bin/bash /usr/bin/env $(ldd /bin/bash "$bin" | grep -v ":$" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$m$(dirname "$f")"
  cp -L "$f" "$m$f"
done
ln -s bash "$m/bin/sh"
mkdir -p "$m/etc" "$m/tmp"
chmod 1777 "$m/tmp"
printf 'root:x:0:0:root:/root:/bin/bash\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/bash\n' >"$m/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$m/etc/group"
# The runtime stage's COPY --from=build /src/out/ /
mkdir -p "$m/usr/local/bin"
cp "$bin" "$m/usr/local/bin/raygate"
ln -s raygate "$m/usr/local/bin/ray"
buildah umount "$c" >/dev/null
buildah config --user 65532:65532 --port 9443 --port 8080 \
  --env PATH=/usr/local/bin:/usr/bin:/bin \
  --entrypoint '["/usr/local/bin/raygate"]' --cmd serve "$c"
buildah commit --quiet --rm "$c" "$image" >/dev/null
c=""

r="$(buildah from "$image")"
run() { buildah run --isolation chroot --user 65532:65532 "$r" -- "$@"; }
echo "buildah-image: $(run /usr/local/bin/raygate --version)" >&2
run /bin/bash -c -- "ray kuberay-autoscaler --help" >/dev/null
echo "buildah-image: /bin/bash -c -- \"ray kuberay-autoscaler --help\": ok (uid $(run /bin/bash -c 'echo $UID'))" >&2
# The sidecar itself, as KubeRay < 1.7 starts it (login shell, `ray` on the reset PATH).
tmp="$(mktemp -d)"
trap 'cleanup; rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=buildah-image-ca -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
{
  echo 'apiVersion: v1'
  echo 'kind: Config'
  echo "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\", certificate-authority-data: \"$(base64 -w0 "$tmp/ca.crt")\"}}]"
  echo 'users: [{name: u, user: {token: none}}]'
  echo 'contexts: [{name: x, context: {cluster: c, user: u}}]'
  echo 'current-context: x'
} >"$tmp/kubeconfig"
chmod 644 "$tmp/kubeconfig"
buildah copy --quiet "$r" "$tmp/kubeconfig" /tmp/kubeconfig >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
buildah run --isolation chroot --user 65532:65532 --env KUBECONFIG=/tmp/kubeconfig \
  --env RAYGATE_ADMIN_LISTEN="127.0.0.1:$port" "$r" -- \
  /bin/bash -lc -- "ray kuberay-autoscaler --cluster-name c --cluster-namespace ns" \
  >"$tmp/sidecar.log" 2>&1 &
sidecar=$!
up=""
for _ in $(seq 1 100); do
  if curl -sf -m 1 "http://127.0.0.1:$port/healthz" >/dev/null; then up=1; break; fi
  kill -0 "$sidecar" 2>/dev/null || break
  sleep 0.2
done
metrics="$(curl -sf -m 2 "http://127.0.0.1:$port/metrics" || true)"
kill "$sidecar" 2>/dev/null || true
wait "$sidecar" 2>/dev/null || true
if [ -z "$up" ] || ! grep -q '^raygate_' <<<"$metrics" \
  || ! grep -q 'raygate autoscaler sidecar started' "$tmp/sidecar.log"; then
  echo "buildah-image: the sidecar did not come up in the image:" >&2
  cat "$tmp/sidecar.log" >&2
  exit 1
fi
echo "buildah-image: ray kuberay-autoscaler --cluster-name c --cluster-namespace ns: sidecar started, /healthz ok, $(grep -c '^raygate_' <<<"$metrics") raygate_ metric lines" >&2
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$image"
