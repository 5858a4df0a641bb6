"""How much of a 300 MB POST a real `sealcheck serve` takes before it answers or hangs up,
per form route: the request-body caps of service/limits.py (issue 25).

A raw socket streams a multipart body (one photo part, or parts of --part-mb each) with a
Content-Length or chunked, without a key or session and with one, and goes on sending after
the answer, as an attacker would, until the server closes the connection; "taken" is what the
connection accepted until then (the client's send buffer is 16 KB; the server's kernel buffer
is included).

    python benchmarks/edge_cutoff.py                  # default caps: 25 MB per photo
    python benchmarks/edge_cutoff.py --upload-mb 1    # the fast test's server
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.server import free_port, serving  # noqa: E402
from testkit.streaming import stream_post  # noqa: E402

_MB = 1024 * 1024
_ID = "00000000-0000-0000-0000-000000000000"
ROUTES = ("/signin", "/signout", "/goldens", f"/goldens/{_ID}/inspections",
          f"/goldens/{_ID}/lots", "/v1/goldens", f"/v1/goldens/{_ID}/inspections",
          "/v1/compare", "/v1/lots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-mb", type=int, default=300)
    parser.add_argument("--upload-mb", type=float, default=None,
                        help="SEALCHECK_MAX_UPLOAD_BYTES in MB (default: the server's)")
    parser.add_argument("--part-mb", type=float, default=None,
                        help="split the body into photos of this size (default: one part)")
    parser.add_argument("--limit-s", type=float, default=60.0, help="give up sending after")
    args = parser.parse_args()
    env = {} if args.upload_mb is None else {
        "SEALCHECK_MAX_UPLOAD_BYTES": str(int(args.upload_mb * _MB))}
    part = None if args.part_mb is None else int(args.part_mb * _MB)
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir, \
            serving(port, Path(data_dir), env) as (base, key):
        signed_in = httpx.post(f"{base}/signin", data={"api_key": key}, follow_redirects=False)
        who = {"nobody": {}, "signed in": {
            "Authorization": f"Bearer {key}",
            "Cookie": f"sealcheck_session={signed_in.cookies['sealcheck_session']}"}}
        print(f"{'route':<52} {'caller':<10} {'framing':<15} {'status':>6} {'taken MB':>9} "
              f"{'s':>6}  closed")
        for path in ROUTES:
            for caller, headers in who.items():
                for chunked in (False, True):
                    cut = stream_post(port, path, args.body_mb * _MB, headers=headers,
                                      chunked=chunked, part_bytes=part, limit_s=args.limit_s,
                                      keep_sending=True)
                    print(f"{path:<52} {caller:<10} "
                          f"{'chunked' if chunked else 'Content-Length':<15} "
                          f"{cut.status!s:>6} {cut.sent / _MB:9.2f} {cut.seconds:6.2f}  "
                          f"{cut.connection_closed}")
        print("healthz afterwards:", httpx.get(f"{base}/healthz").status_code)


if __name__ == "__main__":
    main()
