"""The nginx configuration of ``deploy/nginx/`` rendered for a local run: the tests' and the
fault harness's ports, a private prefix for pid, logs and temporary files, the checkout's static
files. Everything else (buffers, limits, headers, upstream settings) is the deployed file's."""

from __future__ import annotations

import os
import re
from pathlib import Path

from app.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
STATIC = PROJECT_ROOT / "app" / "static"


def render_nginx(directory: Path, listen: int, web_ports: list[int]) -> Path:
    """deploy/nginx/*.conf with this test's ports, paths and user, in ``directory``."""
    logs = directory / "log"
    logs.mkdir()
    main = (DEPLOY / "nginx" / "nginx.conf").read_text()
    user = "user root;" if os.geteuid() == 0 else ""
    main = main.replace("user www-data;", user)
    # One nginx worker: its round robin alternates strictly, so requests in flight at once are
    # spread over both web processes (two workers each keep their own turn).
    main = main.replace("worker_processes auto;", "worker_processes 1;")
    main = main.replace("/run/nginx.pid", str(directory / "nginx.pid"))
    main = main.replace("/var/log/nginx/", f"{logs}/")
    # Dynamic modules load relative to the prefix; the site needs none of them.
    main = main.replace("include /etc/nginx/modules-enabled/*.conf;", "")
    main = main.replace("include /etc/nginx/conf.d/*.conf;", "")
    main = main.replace("include /etc/nginx/sites-enabled/*;", f"include {directory}/worklane.conf;")
    temp = "\n".join(
        f"\t{kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = main.replace("http {\n", "http {\n" + temp + "\n", 1)
    site = (DEPLOY / "nginx" / "worklane.conf").read_text()
    servers = "".join(f"\tserver 127.0.0.1:{port} max_fails=0;\n" for port in web_ports)
    site = re.sub(r"(\tserver 127\.0\.0\.1:\d+ max_fails=0;\n)+", servers, site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};").replace("listen [::]:80;", "")
    site = site.replace("/srv/worklane/app/static/", f"{STATIC}/")
    site = site.replace("/etc/nginx/snippets/worklane-proxy.conf", str(directory / "worklane-proxy.conf"))
    (directory / "nginx.conf").write_text(main)
    (directory / "worklane.conf").write_text(site)
    (directory / "worklane-proxy.conf").write_text((DEPLOY / "nginx" / "worklane-proxy.conf").read_text())
    return directory / "nginx.conf"
