"""`web_read` against a real HTTP server on 127.0.0.1: text, hidden text, redirects and scopes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from automation.tools.base import ToolContext, ToolError, ToolRegistry
from automation.tools.builtin import register
from automation.tools.scopes import DataScopes
from automation.tools.web import MAX_BYTES, WebRead
from memory.db import Database, open_database
from tests.conftest import free_port

LOOPBACK = DataScopes(sites=("127.0.0.1:*",))
HTML = {"Content-Type": "text/html; charset=utf-8"}


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: dict(HTML))
    chunked: bool = False


class PageServer:
    """Serves `routes` on 127.0.0.1 until closed; records each request's path and Host header."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                # The client may hang up mid-body, as web_read does on an oversize page.
                with contextlib.suppress(ConnectionError):
                    super().handle()

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host")))
                route = server.routes.get(self.path, Route(status=404, body=b"not found"))
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                try:
                    if route.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for start in range(0, len(route.body), 65536):
                            piece = route.body[start : start + 65536]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(route.body)))
                        self.end_headers()
                        self.wfile.write(route.body)
                except OSError:
                    return  # the client stopped reading, as it should on an oversize page

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def page(self, path: str, markup: str, **route: Any) -> str:
        """Serve `markup` as UTF-8 HTML at `path`; returns its URL."""
        self.routes[path] = Route(body=markup.encode(), **route)
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[PageServer]:
    with PageServer() as pages:
        yield pages


def self_signed(tmp_path: Path, name: str) -> ssl.SSLContext:
    """A server TLS context with a certificate for `name` that no public CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'web.db'}")  # web_read never queries it
    yield database
    await database.dispose()


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Fake name resolution: name -> successive answers, the last repeating ([] = no such name).

    Other names resolve for real.
    """
    answers: dict[str, list[list[str]]] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return await real(host, port, *args, **kwargs)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return answers


async def read(db: Database, url: str, *, scopes: DataScopes = LOOPBACK, **args: Any) -> str:
    ctx = ToolContext(
        user_id=1, timezone="Asia/Shanghai", db=db, now=datetime.now(UTC), scopes=scopes
    )
    return await WebRead().call({"url": url, **args}, ctx)


def body_of(result: str) -> str:
    """The page text: what follows the blank line after the header lines."""
    return result.split("\n\n", 1)[1]


# --- text and decoding ---------------------------------------------------------------------------


async def test_chinese_utf8_page_returns_title_url_and_text(
    server: PageServer, db: Database
) -> None:
    url = server.page(
        "/weather",
        "<!doctype html><html><head><meta charset='utf-8'><title>天气预报</title>"
        "<script>var x = '脚本';</script></head>"
        "<body><h1>北京</h1><p>明天晴，\n   最高气温 25°C。</p></body></html>",
    )

    result = await read(db, url)

    assert result == f"Title: 天气预报\nURL: {url}\n\n北京\n明天晴， 最高气温 25°C。"


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [
        ("text/html; charset=GBK", ""),
        ("text/html", '<meta charset="gb2312">'),
        ("text/html", '<meta http-equiv="Content-Type" content="text/html; charset=gbk">'),
    ],
    ids=["header", "meta-charset-gb2312", "meta-http-equiv"],
)
async def test_gbk_page_decodes_from_header_or_meta(
    server: PageServer, db: Database, content_type: str, meta: str
) -> None:
    # 镕 is in GBK but not in GB2312: pages labelled gb2312 use GBK, and browsers decode so.
    markup = (
        f"<html><head>{meta}<title>新闻</title></head><body><p>朱镕基访问上海</p></body></html>"
    )
    server.routes["/gbk"] = Route(body=markup.encode("gbk"), headers={"Content-Type": content_type})

    result = await read(db, f"{server.base}/gbk")

    assert result.startswith("Title: 新闻\n")
    assert body_of(result) == "朱镕基访问上海"


async def test_plain_text_and_json_pass_through(server: PageServer, db: Database) -> None:
    server.routes["/notes.txt"] = Route(
        body="第一行  \r\n第二行\n".encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    server.routes["/data"] = Route(
        body=b'{"city": "Beijing", "temp": 25}', headers={"Content-Type": "application/json"}
    )

    text = await read(db, f"{server.base}/notes.txt")
    data = await read(db, f"{server.base}/data")

    assert text == f"URL: {server.base}/notes.txt\n\n第一行\n第二行"
    assert body_of(data) == '{"city": "Beijing", "temp": 25}'


async def test_html_without_content_type_is_still_read(server: PageServer, db: Database) -> None:
    server.routes["/bare"] = Route(body=b"<p>plain <b>markup</b></p>", headers={})

    assert body_of(await read(db, f"{server.base}/bare")) == "plain markup"


# --- what is visible -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden",
    [
        "<div hidden>SECRET</div>",
        '<div aria-hidden="true">SECRET</div>',
        '<div aria-hidden="TRUE">SECRET</div>',
        '<div style="display:none">SECRET</div>',
        '<div style="DISPLAY : None !important">SECRET</div>',
        '<span style="color: red; visibility: hidden">SECRET</span>',
        '<p style="font-size:0">SECRET</p>',
        '<p style="font-size: 0px;">SECRET</p>',
        '<p style="font-size:0.0em">SECRET</p>',
        '<p style="opacity:0">SECRET</p>',
        '<p style="opacity : 0.0 ; color:#000">SECRET</p>',
        '<div hidden><p>SECRET <span style="display:none">nested</span></p></div>',
        "<dialog>SECRET</dialog>",
    ],
)
async def test_hidden_text_is_dropped_and_counted(
    server: PageServer, db: Database, hidden: str
) -> None:
    url = server.page("/p", f"<p>before</p>{hidden}<p>after</p>")

    result = await read(db, url)

    assert "SECRET" not in result and "nested" not in result
    assert result == f"URL: {url}\n(1 hidden element was dropped)\n\nbefore\nafter"


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ('<p style="font-size:0.5em">small</p>', "small"),
        ('<p style="opacity:0.5">faint</p>', "faint"),
        ("<p hiddenx>odd attribute</p>", "odd attribute"),
        ("<dialog open>open dialog</dialog>", "open dialog"),
    ],
)
async def test_small_faint_or_open_text_is_still_visible(
    server: PageServer, db: Database, markup: str, text: str
) -> None:
    url = server.page("/p", markup)

    assert await read(db, url) == f"URL: {url}\n\n{text}"


async def test_several_hidden_elements_are_counted(server: PageServer, db: Database) -> None:
    url = server.page(
        "/p",
        "<p>shown</p><div hidden>a</div><span aria-hidden=true>b</span>"
        "<p style='display:none'>c</p>",
    )

    result = await read(db, url)

    assert result == f"URL: {url}\n(3 hidden elements were dropped)\n\nshown"


async def test_hidden_form_fields_are_never_shown(server: PageServer, db: Database) -> None:
    # Inputs have no text of their own; a hidden one (a CSRF token) is not counted as hidden text.
    url = server.page(
        "/form", '<form><input type="hidden" name="t" value="SECRET"><p>Search</p></form>'
    )

    assert await read(db, url) == f"URL: {url}\n\nSearch"


async def test_unclosed_hidden_element_ends_with_its_parent(
    server: PageServer, db: Database
) -> None:
    url = server.page(
        "/p",
        "<section><div style='display:none'>SECRET<p>still hidden</section><p>after</p>"
        "<ul><li hidden>SECRET<li>next item</ul>",
    )

    result = await read(db, url)

    assert "SECRET" not in result and "still hidden" not in result
    assert body_of(result) == "after\n- next item"
    assert "(2 hidden elements were dropped)" in result


async def test_self_closing_slash_does_not_end_a_hidden_element(
    server: PageServer, db: Database
) -> None:
    # In HTML, <div hidden/> opens a div, so a browser hides the text after it too.
    url = server.page(
        "/p",
        "<div><div hidden/>SECRET</div><p>after</p>"
        "<script src='x.js'/>var injected = 1;</script><p>end</p>",
    )

    result = await read(db, url)

    assert "SECRET" not in result and "injected" not in result
    assert body_of(result) == "after\nend"


async def test_scripts_styles_and_embedded_documents_are_dropped(
    server: PageServer, db: Database
) -> None:
    url = server.page(
        "/p",
        "<html><head><title>Real title</title><style>.a{color:red}</style>"
        "<script>alert('head')</script></head><body>"
        "<script>document.write('body script')</script><noscript>enable js</noscript>"
        "<template><p>template text</p></template>"
        "<svg><title>icon title</title><text>svg text</text></svg>"
        "<iframe>frame text</iframe><!-- a comment --><p>visible</p></body></html>",
    )

    result = await read(db, url)

    assert result == f"Title: Real title\nURL: {url}\n\nvisible"


async def test_missing_head_end_tag_does_not_hide_the_body(
    server: PageServer, db: Database
) -> None:
    url = server.page("/p", "<html><head><title>T</title><body><p>Body text</p>")

    assert await read(db, url) == f"Title: T\nURL: {url}\n\nBody text"


async def test_markup_the_parser_cannot_handle_keeps_the_text_before_it(
    server: PageServer, db: Database
) -> None:
    url = server.page("/p", "<p>before</p><![bogus[ x ]]><p>after</p>")

    assert body_of(await read(db, url)) == "before\n(the rest of the page could not be parsed)"


async def test_links_show_absolute_http_addresses(server: PageServer, db: Database) -> None:
    url = server.page(
        "/p",
        '<p>See <a href="https://example.com/a?b=1">the docs</a>, <a href="/relative">home</a>, '
        '<a href="mailto:x@y.z">mail</a>, <a href="javascript:alert(1)">js</a> and '
        '<a href="https://example.com/"><img src="logo.png"></a> '
        '<a href="http://example.org/">http://example.org/</a>.</p>',
    )

    result = await read(db, url)

    assert body_of(result) == (
        "See the docs (https://example.com/a?b=1), home, mail, js and http://example.org/."
    )


async def test_blocks_break_lines_and_whitespace_collapses(
    server: PageServer, db: Database
) -> None:
    url = server.page(
        "/p",
        "<div>one\n     two</div><ul><li>a</li><li>b</ul>"
        "<table><tr><th>Name</th><th>Age</th></tr><tr><td>王</td><td>30</td></tr></table>"
        "line<br>break<pre>code  line 1\ncode line 2</pre>",
    )

    result = await read(db, url)

    assert body_of(result) == (
        "one two\n- a\n- b\nName | Age\n王 | 30\nline\nbreak\ncode line 1\ncode line 2"
    )


async def test_max_chars_truncates_the_text(server: PageServer, db: Database) -> None:
    url = server.page("/long", f"<title>Long</title><p>{'字' * 3000}</p>")

    result = await read(db, url, max_chars=500)

    assert result.startswith(f"Title: Long\nURL: {url}\n\n")
    assert body_of(result) == "字" * 500 + "… (truncated)"


async def test_max_chars_out_of_bounds_is_an_argument_error(
    server: PageServer, db: Database
) -> None:
    with pytest.raises(ToolError, match="invalid arguments for web_read: max_chars"):
        await read(db, f"{server.base}/", max_chars=100)


# --- redirects -----------------------------------------------------------------------------------


async def test_redirect_chain_is_followed_to_the_final_url(
    server: PageServer, db: Database
) -> None:
    server.routes["/r1"] = Route(status=302, headers={"Location": "/r2"})
    server.routes["/r2"] = Route(status=301, headers={"Location": f"{server.base}/dir/r3"})
    server.routes["/dir/r3"] = Route(status=307, headers={"Location": "page"})
    final = server.page("/dir/page", "<p>arrived</p>")

    result = await read(db, f"{server.base}/r1")

    assert result == f"URL: {final}\n\narrived"


async def test_redirect_to_a_host_outside_the_scope_is_refused(
    server: PageServer, db: Database
) -> None:
    server.page("/page", "<p>not for you</p>")
    server.routes["/out"] = Route(
        status=302, headers={"Location": f"http://localhost:{server.port}/page"}
    )

    with pytest.raises(ToolError) as caught:
        await read(db, f"{server.base}/out")

    assert str(caught.value) == (
        f"refusing to read http://localhost:{server.port}/page (redirected from {server.base}/out): "
        "localhost is not among the sites the policy allows (scopes.sites in policy.yaml; "
        "private and loopback addresses must be listed by name)"
    )
    assert server.hits("/page") == 0


async def test_redirect_to_another_scheme_is_refused(server: PageServer, db: Database) -> None:
    server.routes["/file"] = Route(status=302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(ToolError, match="only http:// and https:// pages can be read"):
        await read(db, f"{server.base}/file")


async def test_redirect_loop_stops_after_five_redirects(server: PageServer, db: Database) -> None:
    server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})

    with pytest.raises(ToolError, match="redirects more than 5 times"):
        await read(db, f"{server.base}/loop")

    assert server.hits("/loop") == 6


# --- data scopes and private addresses -----------------------------------------------------------


async def test_loopback_is_refused_when_the_scope_is_only_a_wildcard(
    server: PageServer, db: Database
) -> None:
    url = server.page("/p", "<p>router admin</p>")

    with pytest.raises(ToolError) as caught:
        await read(db, url, scopes=DataScopes())

    assert str(caught.value).startswith(
        f"refusing to read {url}: 127.0.0.1 is not among the sites the policy allows "
        "(scopes.sites in policy.yaml"
    )
    assert server.requests == []


@pytest.mark.parametrize("pattern", ["127.0.0.1:*", "127.0.0.1", "127.0.0.1:{port}", "127.0.0.*"])
async def test_loopback_is_read_when_the_scope_names_it(
    server: PageServer, db: Database, pattern: str
) -> None:
    url = server.page("/p", "<p>router admin</p>")
    scopes = DataScopes(sites=(pattern.format(port=server.port),))

    assert body_of(await read(db, url, scopes=scopes)) == "router admin"


async def test_loopback_on_another_port_is_refused(server: PageServer, db: Database) -> None:
    url = server.page("/p", "<p>router admin</p>")

    with pytest.raises(ToolError, match="not among the sites"):
        await read(db, url, scopes=DataScopes(sites=("127.0.0.1:1",)))


async def test_localhost_is_read_only_when_named(server: PageServer, db: Database) -> None:
    server.page("/p", "<p>local service</p>")
    url = f"http://localhost:{server.port}/p"

    with pytest.raises(ToolError, match="localhost is not among the sites"):
        await read(db, url, scopes=DataScopes())
    result = await read(db, url, scopes=DataScopes(sites=("localhost",)))

    assert body_of(result) == "local service"
    assert server.requests == [("/p", f"localhost:{server.port}")]


async def test_a_host_wildcard_does_not_name_a_name_that_resolves_privately(
    server: PageServer, db: Database
) -> None:
    server.page("/p", "<p>local service</p>")

    with pytest.raises(
        ToolError, match=r"localhost resolves to a private address \(127\.0\.0\.1\)"
    ):
        await read(db, f"http://localhost:{server.port}/p", scopes=DataScopes(sites=("local*",)))

    assert server.requests == []


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["93.184.215.14", "127.0.0.1"]])
async def test_public_name_resolving_to_a_private_address_is_refused(
    server: PageServer, db: Database, dns: dict[str, list[list[str]]], answer: list[str]
) -> None:
    dns["intranet.invalid"] = [answer]
    server.page("/p", "<p>internal wiki</p>")

    with pytest.raises(ToolError) as caught:
        await read(db, f"http://intranet.invalid:{server.port}/p", scopes=DataScopes())

    assert "intranet.invalid resolves to a private address (127.0.0.1)" in str(caught.value)
    assert "scopes.sites in policy.yaml" in str(caught.value)
    assert server.requests == []


async def test_name_listed_in_the_scope_is_read_with_its_host_header(
    server: PageServer, db: Database, dns: dict[str, list[list[str]]]
) -> None:
    dns["nas.invalid"] = [["127.0.0.1"]]
    server.page("/p", "<p>disk status</p>")

    result = await read(
        db, f"http://nas.invalid:{server.port}/p", scopes=DataScopes(sites=("nas.invalid:*",))
    )

    assert body_of(result) == "disk status"
    assert server.requests == [("/p", f"nas.invalid:{server.port}")]


async def test_connection_goes_to_the_checked_address_not_a_rebound_one(
    server: PageServer, db: Database, dns: dict[str, list[list[str]]]
) -> None:
    # DNS rebinding: public when checked, loopback a moment later when the client would look.
    dns["rebind.invalid"] = [["93.184.215.14"], ["127.0.0.1"]]
    server.page("/p", "<p>router admin</p>")

    with pytest.raises(ToolError, match="connection refused"):
        await read(db, f"http://rebind.invalid:{server.port}/p", scopes=DataScopes())

    assert server.requests == []


async def test_https_to_a_pinned_address_still_verifies_the_certificate(
    db: Database, dns: dict[str, list[list[str]]], tmp_path: Path
) -> None:
    dns["nas.invalid"] = [["127.0.0.1"]]
    with PageServer(tls=self_signed(tmp_path, "nas.invalid")) as server:
        server.page("/p", "<p>disk status</p>")

        with pytest.raises(ToolError, match="invalid TLS certificate: self.signed certificate"):
            await read(
                db,
                f"https://nas.invalid:{server.port}/p",
                scopes=DataScopes(sites=("nas.invalid",)),
            )

    assert server.requests == []


async def test_unknown_host_name_is_a_clear_error(
    db: Database, dns: dict[str, list[list[str]]]
) -> None:
    dns["nowhere.invalid"] = [[]]

    with pytest.raises(ToolError) as caught:
        await read(db, "https://nowhere.invalid/page", scopes=DataScopes())

    assert str(caught.value) == (
        "cannot read https://nowhere.invalid/page: host name nowhere.invalid not found "
        "(Name or service not known)"
    )


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/file", "javascript:alert(1)", "example.com/page"],
)
async def test_non_http_addresses_are_refused(db: Database, url: str) -> None:
    with pytest.raises(ToolError, match="only http:// and https:// pages can be read"):
        await read(db, url)


async def test_url_without_host_is_refused(db: Database) -> None:
    with pytest.raises(ToolError, match="has no host name"):
        await read(db, "http:///path")


# --- what is refused after connecting ------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_page_over_two_megabytes_is_refused(
    server: PageServer, db: Database, chunked: bool
) -> None:
    server.routes["/big"] = Route(
        body=b"a" * (MAX_BYTES + 1), headers={"Content-Type": "text/plain"}, chunked=chunked
    )

    with pytest.raises(ToolError, match="page larger than 2 MB"):
        await read(db, f"{server.base}/big")


@pytest.mark.parametrize(
    "content_type", ["image/png", "application/octet-stream", "application/pdf"]
)
async def test_binary_content_type_is_refused(
    server: PageServer, db: Database, content_type: str
) -> None:
    server.routes["/file"] = Route(
        body=b"\x89PNG\r\n\x00\x00", headers={"Content-Type": content_type}
    )

    with pytest.raises(ToolError, match=f"is {content_type}, not a web page"):
        await read(db, f"{server.base}/file")


async def test_binary_body_without_content_type_is_refused(
    server: PageServer, db: Database
) -> None:
    server.routes["/blob"] = Route(body=b"\x00\x01\x02binary", headers={})

    with pytest.raises(ToolError, match="binary data"):
        await read(db, f"{server.base}/blob")


@pytest.mark.parametrize(
    ("status", "words"), [(404, "404 Not Found"), (500, "500 Internal Server Error")]
)
async def test_http_error_status_is_a_clear_error(
    server: PageServer, db: Database, status: int, words: str
) -> None:
    server.routes["/x"] = Route(status=status, body=b"<p>error page</p>")

    with pytest.raises(ToolError) as caught:
        await read(db, f"{server.base}/x")

    assert str(caught.value) == f"{server.base}/x answered {words}"


async def test_connection_refused_is_a_clear_error(db: Database) -> None:
    url = f"http://127.0.0.1:{free_port()}/"

    with pytest.raises(ToolError) as caught:
        await read(db, url)

    assert str(caught.value) == f"reading {url} failed (connection refused)"


# --- the tool's face -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"url": "https://Example.COM/path?q=1"}, "example.com"),
        ({"url": "http://user:pw@Host.example:8080/"}, "host.example:8080"),
        ({"url": "http://[::1"}, ""),
        ({"url": "not a url"}, ""),
        ({"url": None}, ""),
        ({"url": 12}, ""),
        ({}, ""),
        (["not", "a", "dict"], ""),
    ],
)
def test_target_is_the_host_or_empty_and_never_raises(arguments: Any, expected: str) -> None:
    assert WebRead().target(arguments) == expected


def test_web_read_is_a_registered_untrusted_read() -> None:
    registry = ToolRegistry()
    register(registry)

    tool = registry.get("web_read")

    assert isinstance(tool, WebRead)
    assert tool.untrusted_output and tool.reads == frozenset({"web"}) and tool.risk == "read"
    assert tool.schema()["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "http:// or https:// address of the page"},
            "max_chars": {
                "type": "integer",
                "default": 6000,
                "minimum": 500,
                "maximum": 20000,
                "description": "Longest text to return",
            },
        },
        "required": ["url"],
    }
