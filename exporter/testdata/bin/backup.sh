#!/bin/sh
tar c /srv | gzip > /backup/srv.tgz
