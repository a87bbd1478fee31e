"""Container health probe: GET a path of the console gateway on this host.

    python /app/deploy/probe.py /healthz    the process answers (the Dockerfile's HEALTHCHECK)
    python /app/deploy/probe.py /readyz     it can do its work: PostgreSQL and NATS reachable
                                            (docker-compose.yml's healthchecks)

Exit status 0 on 200, 1 otherwise; what the service answered is printed, so
`docker inspect --format '{{json .State.Health}}' CONTAINER` shows why a
container is unhealthy. The port is ECC_CONSOLE_PORT (default 8780).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    port = os.environ.get("ECC_CONSOLE_PORT", "8780")
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            print(response.read(2000).decode(errors="replace").strip())
            return 0
    except urllib.error.HTTPError as exc:  # 503 from /readyz says what is wrong
        print(f"{url}: {exc.code} {exc.read(2000).decode(errors='replace').strip()}")
    except OSError as exc:
        print(f"{url}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
