#!/usr/bin/env bash
# One command, on Debian bookworm (glibc 2.36) as root: build
#   dist/ingestbox                      a one-file PyInstaller binary (runs where there is no Python)
#   dist/ingestbox_<version>_amd64.deb  a one-dir build under /usr/lib/ingestbox with /usr/bin/ingestbox,
#                                       the config, the hardened systemd unit and the ingestbox user.
# The .deb carries the one-dir build: it starts faster and does not unpack itself into /tmp on every
# start (which a one-file binary does, and PrivateTmp/ProtectSystem make awkward).
set -euo pipefail
source "$(dirname "$0")/../scripts/setup-env.sh"

apt_install python3 python3-venv python3-pip libmagic1 ca-certificates binutils dpkg-dev
make_venv "build"
cd "$REPO"
VERSION="$("$VENV/bin/python" -c 'import appliance; print(appliance.__version__)')"
ARCH=amd64
LIBMAGIC="$(readlink -f /usr/lib/x86_64-linux-gnu/libmagic.so.1)"
MAGIC_DB="$(readlink -f /usr/lib/file/magic.mgc)"
WORK="$REPO/build/packaging"
rm -rf "$WORK" dist/ingestbox "dist/ingestbox_${VERSION}_${ARCH}.deb"
mkdir -p "$WORK" dist

pyinstaller() {
  # Everything loaded by name at run time is named here: the storage backends, libmagic and its
  # database, Sanic's and tracerite's data files, PyAV's FFmpeg libraries (PyInstaller's av hook).
  "$VENV/bin/pyinstaller" --noconfirm --log-level WARN --name ingestbox --paths "$REPO" \
    --workpath "$WORK/work-$1" --specpath "$WORK" \
    --add-binary "$LIBMAGIC:." --add-data "$MAGIC_DB:." \
    --collect-data tracerite --collect-data sanic --collect-submodules appliance \
    --collect-submodules transcode --collect-submodules hwaccel \
    --hidden-import boto3 --hidden-import minio --hidden-import pypdfium2 \
    --exclude-module tkinter --exclude-module pytest --exclude-module mypy \
    "${@:2}" packaging/entry.py
}

echo "== one-file binary"
pyinstaller onefile --onefile --distpath dist
echo "== one-dir build for the .deb"
pyinstaller onedir --onedir --strip --distpath "$WORK/onedir"

echo "== .deb"
ROOT="$WORK/deb"
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/lib" "$ROOT/usr/bin" "$ROOT/etc/ingestbox" "$ROOT/lib/systemd/system" \
  "$ROOT/usr/share/doc/ingestbox"
cp -a "$WORK/onedir/ingestbox" "$ROOT/usr/lib/ingestbox"
ln -s ../lib/ingestbox/ingestbox "$ROOT/usr/bin/ingestbox"
install -m 0644 config/ingestbox.toml "$ROOT/etc/ingestbox/ingestbox.toml"
install -m 0644 systemd/ingestbox.service "$ROOT/lib/systemd/system/ingestbox.service"
install -m 0644 packaging/debian/copyright "$ROOT/usr/share/doc/ingestbox/copyright"
gzip -9n -c CHANGELOG.md > "$ROOT/usr/share/doc/ingestbox/CHANGELOG.md.gz"
printf 'ingestbox (%s) stable; urgency=medium\n\n  * Built from the ingestbox repository; see CHANGELOG.md.gz.\n\n -- ingestbox maintainers <maintainers@ingestbox.invalid>  %s\n' \
  "$VERSION" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$ROOT/usr/share/doc/ingestbox/changelog.gz"
mkdir -p "$ROOT/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$ROOT/usr/share/lintian/overrides/ingestbox"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$ROOT/DEBIAN/$script"
done
install -m 0644 packaging/debian/conffiles "$ROOT/DEBIAN/conffiles"
SIZE_KB="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE_KB/" packaging/debian/control \
  > "$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' \
  > DEBIAN/md5sums)
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "dist/ingestbox_${VERSION}_${ARCH}.deb" >/dev/null

ls -l dist/ingestbox "dist/ingestbox_${VERSION}_${ARCH}.deb"
