#!/usr/bin/env python3
"""A tiny, DELIBERATELY VULNERABLE web application: the control target of scripts/scan.

Never deploy it, never bind it to anything but 127.0.0.1. It exists so that scripts/scan can show
that its scanners, with the very options used against the portal, do find vulnerabilities: a
"0 findings" on the portal then means something.

It mirrors the portal's form handling, a signed double submit: an HttpOnly cookie holds a random
nonce, the hidden `csrf` input holds HMAC(server key, nonce), and a POST without both, or whose
token does not match its cookie, is refused (403). So a scanner that mishandles the token or the
cookie finds nothing here either, and the control fails. Its two flaws, and nothing else:

  * The guide search, parameter `q`: SQL injection. The query is built by string concatenation
    and run on an in-memory SQLite database; the database error is shown in the page. The search
    is reachable as the form (POST /recherche, with the CSRF token) and as a plain link
    (GET /recherche?q=...), so both ways scripts/scan drives sqlmap (with and without the token)
    are checked.
  * GET /bonjour, parameter `nom`: reflected cross-site scripting (echoed without escaping).

Python 3 standard library only. Usage: scan-stub.py [--port N]; it prints
"listening on http://127.0.0.1:PORT/" on its first line of output, then serves until killed.
"""

import argparse
import hashlib
import hmac
import html
import re
import secrets
import sqlite3
import sys
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COOKIE = "stub_csrf"
MAX_BODY = 64 * 1024
KEY = secrets.token_bytes(32)  # signs the tokens; a new one each start
NONCE = re.compile(r"^[0-9a-f]{64}$")

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB_LOCK = threading.Lock()
DB.executescript(
    """
    CREATE TABLE guides (id INTEGER PRIMARY KEY, titre TEXT NOT NULL, corps TEXT NOT NULL);
    INSERT INTO guides (titre, corps) VALUES
      ('Imprimer un bulletin', 'Choisir le modèle, puis imprimer.'),
      ('Ajouter un membre', 'Inviter par e-mail depuis le compte.'),
      ('Changer de formule', 'Depuis la page du compte.');
    CREATE TABLE comptes (id INTEGER PRIMARY KEY, email TEXT, mot_de_passe TEXT);
    INSERT INTO comptes (email, mot_de_passe) VALUES ('admin@stub.invalid', 'secret-du-stub');
    """
)


def page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} · stub</title></head><body>"
        "<nav><a href=\"/\">Accueil</a> · <a href=\"/bonjour?nom=visiteur\">Bonjour</a></nav>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    ).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    server_version = "scan-stub/1"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and delayed
    # ACKs add 40 ms to every keep-alive response, and sqlmap crawls.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: scanners send thousands of requests
        pass

    # --------------------------------------------------------------------------- CSRF
    def session(self) -> tuple[str, str, bool]:
        """(this browser's nonce, the csrf token for its forms, whether the nonce is new)."""
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except Exception:  # a malformed Cookie header (a scanner's payload): no cookie
            cookie = SimpleCookie()
        nonce = cookie[COOKIE].value if COOKIE in cookie else ""
        new = not NONCE.match(nonce)
        if new:
            nonce = secrets.token_hex(32)
        token = hmac.new(KEY, b"csrf\0" + nonce.encode(), hashlib.sha256).hexdigest()
        return nonce, token, new

    def send(self, status: int, body: bytes, new_nonce: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if new_nonce:
            self.send_header("Set-Cookie", f"{COOKIE}={new_nonce}; Path=/; HttpOnly; SameSite=Lax")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def search_form(self, token: str, q: str = "") -> str:
        return (
            "<form method=\"post\" action=\"/recherche\">"
            f"<input type=\"hidden\" name=\"csrf\" value=\"{token}\">"
            "<label>Rechercher un guide "
            f"<input type=\"text\" name=\"q\" value=\"{html.escape(q)}\"></label>"
            "<button type=\"submit\">Rechercher</button></form>"
        )

    # --------------------------------------------------------------------------- routes
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        nonce, token, new = self.session()
        cookie = nonce if new else ""
        query = parse_qs(url.query)
        if url.path == "/recherche" and "q" in query:
            self.search(query["q"][0], token, cookie)
        elif url.path in ("/", "/recherche"):
            body = self.search_form(token) + (
                "<p>Recherches fréquentes : <a href=\"/recherche?q=bulletin\">bulletin</a></p>"
            )
            self.send(200, page("Guides", body), cookie)
        elif url.path == "/bonjour":
            # THE FLAW (reflected XSS): `nom` goes into the page unescaped.
            nom = query.get("nom", ["visiteur"])[0]
            self.send(200, page("Bonjour", f"<p>Bonjour {nom} !</p>"), cookie)
        else:
            self.send(404, page("Introuvable", "<p>Cette page n'existe pas.</p>"), cookie)

    def do_POST(self):
        url = urlsplit(self.path)
        nonce, token, new = self.session()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send(413, page("Trop grand", ""))
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        if url.path != "/recherche":
            self.send(404, page("Introuvable", ""), nonce if new else "")
            return
        sent = form.get("csrf", [""])[0]
        if new or not secrets.compare_digest(sent.encode(), token.encode()):
            self.send(403, page("Refusé", "<p>Jeton CSRF manquant ou invalide.</p>"), nonce if new else "")
            return
        self.search(form.get("q", [""])[0], token, "")

    def search(self, q: str, token: str, cookie: str) -> None:
        # THE FLAW (SQL injection): `q` is concatenated into the query; errors are shown.
        sql = "SELECT titre, corps FROM guides WHERE titre LIKE '%" + q + "%' ORDER BY id"
        try:
            with DB_LOCK:
                rows = DB.execute(sql).fetchall()
        except sqlite3.Error as error:
            body = self.search_form(token, q) + (
                f"<pre>{type(error).__module__}.{type(error).__name__}: {html.escape(str(error))}</pre>"
            )
            self.send(500, page("Erreur", body), cookie)
            return
        items = "".join(
            f"<li><strong>{html.escape(str(t))}</strong> {html.escape(str(c))}</li>" for t, c in rows
        )
        self.send(200, page("Résultats", self.search_form(token, q) + f"<ul>{items}</ul>"), cookie)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
