"""Render the nginx configuration that ingress-nginx generates for our Ingress's annotations.

    python -m ingress.render_nginx                      # rewrite ingress/edge/nginx.conf
    python -m ingress.render_nginx --gateway 127.0.0.1:9001 --fallback 127.0.0.1:9002 --listen 127.0.0.1:9000 --out -

It follows rootfs/etc/nginx/template/nginx.tmpl of ingress-nginx controller-v1.15.1 for what our
annotations use, at the same levels, because nginx's inheritance decides the behaviour:
- timeouts, HTTP/1.1, buffering and next-upstream are set in the Ingress's location only
  (nginx.tmpl:1333-1355), so the failover locations run on nginx's defaults (60 s timeouts,
  HTTP/1.0, `Connection: close`): a fallback slower than proxy-read-timeout still answers;
- each `@custom_<default backend upstream>_<code>` location (nginx.tmpl:838-866) sets only its
  headers, `rewrite (.*) / break` and proxy_pass, and does not intercept errors (no loop);
- when the gateway Service has no ready endpoints the controller points the location itself at
  the default backend (internal/ingress/controller/controller.go:959-973), which then gets the
  original path and `X-Code: 503` (nginx.tmpl:1380-1388); `--no-gateway-endpoints` renders that.
The upstreams stand in for ingress-nginx's Lua balancer, one per upstream name it would use. The
compose `edge` profile serves this file, and tests run it in Debian's nginx.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
INGRESS = HERE / "ingress.yaml"
EDGE_CONF = HERE / "edge" / "nginx.conf"
PREFIX = "nginx.ingress.kubernetes.io/"
NAMESPACE = "classifier"  # the overlays' namespace: ingress-nginx names upstreams and headers after it
# ingress-nginx's defaults for what our annotations leave unset (internal/ingress/controller/config/config.go:853-890).
DEFAULTS = {
    "proxy-next-upstream": "error timeout",
    "proxy-next-upstream-tries": "3",
    "proxy-next-upstream-timeout": "0",
    "proxy-request-buffering": "on",
    "proxy-buffering": "off",
    "proxy-body-size": "1m",
    "client-body-buffer-size": "",
    "proxy-connect-timeout": "5",
    "proxy-send-timeout": "60",
    "proxy-read-timeout": "60",
    "proxy-http-version": "1.1",
}


@dataclass(frozen=True)
class Ingress:
    name: str
    service: str
    port: int
    path: str
    notes: dict[str, str]

    @property
    def upstream(self) -> str:
        return f"{NAMESPACE}-{self.service}-{self.port}"  # buildUpstreamName

    @property
    def default_backend_upstream(self) -> str:
        return f"custom-default-backend-{NAMESPACE}-{self.notes['default-backend']}"  # controller.go:961

    @property
    def codes(self) -> list[str]:
        return [code.strip() for code in self.notes.get("custom-http-errors", "").split(",") if code.strip()]


def load(path: Path = INGRESS) -> Ingress:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    rule = document["spec"]["rules"][0]["http"]["paths"][0]
    notes = {
        key.removeprefix(PREFIX): str(value)
        for key, value in document["metadata"]["annotations"].items()
        if key.startswith(PREFIX)
    }
    return Ingress(
        document["metadata"]["name"],
        rule["backend"]["service"]["name"],
        rule["backend"]["service"]["port"]["number"],
        rule["path"],
        {**DEFAULTS, **notes},
    )


def named_location(ingress: Ingress, code: str) -> str:
    """CUSTOM_ERRORS (nginx.tmpl:834-868): headers, rewrite to "/", proxy_pass; nothing else."""
    return f"""
    location @custom_{ingress.default_backend_upstream}_{code} {{
        internal;
        proxy_intercept_errors off;
        proxy_set_header X-Code {code};
        proxy_set_header X-Format $http_accept;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Namespace $namespace;
        proxy_set_header X-Ingress-Name $ingress_name;
        proxy_set_header X-Service-Name $service_name;
        proxy_set_header X-Service-Port $service_port;
        proxy_set_header X-Request-ID $req_id;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header Host $best_http_host;
        set $proxy_upstream_name "{ingress.default_backend_upstream}";
        rewrite (.*) / break;
        proxy_pass http://{ingress.default_backend_upstream};
    }}
"""


def main_location(ingress: Ingress, gateway_has_endpoints: bool) -> str:
    notes = ingress.notes
    upstream = ingress.upstream if gateway_has_endpoints else ingress.default_backend_upstream
    # The controller's substitution when the Service has no ready endpoint (nginx.tmpl:1379-1388).
    no_endpoints = (
        ""
        if gateway_has_endpoints
        else """
        proxy_set_header X-Code 503;
        proxy_set_header X-Format $http_accept;
        proxy_set_header X-Namespace $namespace;
        proxy_set_header X-Ingress-Name $ingress_name;
        proxy_set_header X-Service-Name $service_name;
        proxy_set_header X-Service-Port $service_port;
        proxy_set_header X-Request-ID $req_id;
"""
    )
    buffer = (
        f"\n        client_body_buffer_size {notes['client-body-buffer-size']};"
        if notes["client-body-buffer-size"]
        else ""
    )
    error_pages = "".join(
        f"\n        error_page {code} = @custom_{ingress.default_backend_upstream}_{code};" for code in ingress.codes
    )
    return f"""
    location {ingress.path} {{
        set $namespace "{NAMESPACE}";
        set $ingress_name "{ingress.name}";
        set $service_name "{ingress.service}";
        set $service_port "{ingress.port}";
        set $proxy_upstream_name "{upstream}";
        set $best_http_host $http_host;
        client_max_body_size {notes["proxy-body-size"]};{buffer}
        proxy_set_header Host $best_http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header X-Request-ID $req_id;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Host $best_http_host;
        proxy_set_header X-Forwarded-Port $server_port;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Scheme $scheme;
        proxy_set_header X-Scheme $scheme;
        proxy_set_header Proxy "";
        proxy_connect_timeout {notes["proxy-connect-timeout"]}s;
        proxy_send_timeout {notes["proxy-send-timeout"]}s;
        proxy_read_timeout {notes["proxy-read-timeout"]}s;
        proxy_buffering {notes["proxy-buffering"]};
        proxy_request_buffering {notes["proxy-request-buffering"]};
        proxy_http_version {notes["proxy-http-version"]};
        proxy_next_upstream {notes["proxy-next-upstream"]};
        proxy_next_upstream_timeout {notes["proxy-next-upstream-timeout"]};
        proxy_next_upstream_tries {notes["proxy-next-upstream-tries"]};{no_endpoints}
        proxy_intercept_errors {"on" if ingress.codes else "off"};{error_pages}
        proxy_pass http://{upstream};
    }}
"""


def upstream(name: str, servers: list[str]) -> str:
    """ingress-nginx balances in Lua and never marks an endpoint down for failing (nginx's max_fails)."""
    lines = "".join(f"    server {server} max_fails=0;\n" for server in servers)
    return f"upstream {name} {{\n{lines}    keepalive 320;\n}}\n"


def render(ingress: Ingress, gateway: list[str], fallback: list[str], listen: str) -> str:
    """``gateway`` empty means the gateway Service has no ready endpoint."""
    gateway_upstream = upstream(ingress.upstream, gateway) + "\n" if gateway else ""
    named = "".join(named_location(ingress, code) for code in ingress.codes)
    return f"""# Generated by `python -m ingress.render_nginx` from ingress/ingress.yaml; do not edit.
# What ingress-nginx controller-v1.15.1 renders for it (nginx.tmpl), as the http-level part.
map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' '';
}}

map $http_x_request_id $req_id {{
    default $http_x_request_id;
    "" $request_id;
}}

{gateway_upstream}{upstream(ingress.default_backend_upstream, fallback)}
server {{
    listen {listen};
    set $proxy_upstream_name "-";
{named}{main_location(ingress, bool(gateway))}}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingress.render_nginx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--gateway", action="append", help="host:port of a gateway endpoint (repeatable; default gateway:8080)"
    )
    parser.add_argument(
        "--no-gateway-endpoints", action="store_true", help="render the gateway Service with no ready endpoint"
    )
    parser.add_argument(
        "--fallback",
        action="append",
        help="host:port of a fallback-only gateway endpoint (repeatable; default gateway-fallback:8080)",
    )
    parser.add_argument("--listen", default="8000")
    parser.add_argument("--out", default=str(EDGE_CONF), help="file to write, or - for stdout")
    args = parser.parse_args(argv)
    gateway = [] if args.no_gateway_endpoints else args.gateway or ["gateway:8080"]
    text = render(load(), gateway, args.fallback or ["gateway-fallback:8080"], args.listen)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
