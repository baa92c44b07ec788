#!/bin/sh
# prerm of telltale-exporter and telltale-detector: stop and disable the unit.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now "$DPKG_MAINTSCRIPT_PACKAGE.service" || true
fi
