#!/usr/bin/env bash
# Assembles the Dockerfile's runtime image with buildah from local files and runs it (issue #12.2).
# There is no registry access here, so the base is not the pinned debian:bookworm-slim but the
# same Debian release's files from this host (checked: /etc/debian_version 12.x): /bin/bash, and
# the shared libraries bash and raygate load (ldd). On top, exactly what the runtime stage copies
# from the build stage (out/: /usr/local/bin/raygate and the `ray` -> raygate symlink) and its
# config (USER 65532:65532, ENTRYPOINT, CMD, EXPOSE).
#
# Then, in a container of the committed image as user 65532 (buildah run --isolation chroot: the
# OCI runtime crun cannot create containers in this sandbox), the two entry points KubeRay uses:
#   /usr/local/bin/raygate --version
#   /bin/bash -c -- "ray kuberay-autoscaler --help"        (KubeRay < 1.7's autoscaler command)
#
# Needs root and `apt-get install buildah` (Debian 12: buildah 1.28). Not run by scripts/test.sh.
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
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$image"
