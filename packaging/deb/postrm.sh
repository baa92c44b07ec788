#!/bin/sh
# postrm of telltale-exporter and telltale-detector: on purge, the system user
# goes with the last of the two packages.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ] && [ ! -e /usr/bin/telltale-exporter ] && [ ! -e /usr/bin/telltale-detector ]; then
	if getent passwd telltale >/dev/null; then
		userdel telltale
	fi
	if getent group telltale >/dev/null; then
		groupdel telltale
	fi
fi
