#!/bin/sh
# postinst of telltale-exporter and telltale-detector (dpkg names the package
# in DPKG_MAINTSCRIPT_PACKAGE; its unit has the same name): the system user
# both run as, then the unit enabled and started where systemd runs.
set -e
if [ "$1" = configure ]; then
	if ! getent passwd telltale >/dev/null; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "Telltale" telltale
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable "$DPKG_MAINTSCRIPT_PACKAGE.service"
		systemctl restart "$DPKG_MAINTSCRIPT_PACKAGE.service"
	fi
fi
