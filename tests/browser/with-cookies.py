#!/usr/bin/env python3
"""Runs one of the shared checkers (a Python script that reads pages with urllib) as a signed-in
reader: every request it makes carries the Cookie header NANOCLIP_COOKIES ("name=value; …"). The
checker itself is run unchanged. When NANOCLIP_VISITED names a file, the URLs it requested are
written there, one a line, when it ends.

    NANOCLIP_COOKIES='nanoclip_session=…' python3 with-cookies.py ../../../shared/tools/check-typography.py --url URL
"""
import atexit, os, runpy, sys, urllib.request

if len(sys.argv) < 2:
    sys.exit(__doc__)
visited = []


class Cookies(urllib.request.BaseHandler):
    handler_order = 100

    def http_request(self, request):
        request.add_unredirected_header("Cookie", os.environ.get("NANOCLIP_COOKIES", ""))
        visited.append(request.full_url)
        return request

    https_request = http_request


def written():
    if os.environ.get("NANOCLIP_VISITED"):
        with open(os.environ["NANOCLIP_VISITED"], "w") as f:
            f.write("".join(u + "\n" for u in visited))


atexit.register(written)
urllib.request.install_opener(urllib.request.build_opener(Cookies()))
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
