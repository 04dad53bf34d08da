# A real SMTP server for the alert tests: aiosmtpd (Debian python3-aiosmtpd) with STARTTLS required
# before AUTH and MAIL, and one login. It listens on a free port of 127.0.0.1, prints the port on the
# first line of stdout, and writes every accepted message to OUTDIR/NNNN.eml (written under a temporary
# name, then renamed, so a reader never sees half a message).
# Usage: python3 smtpd.py CERT KEY USER PASSWORD OUTDIR
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cert, key, user, password, outdir = sys.argv[1:6]
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
count = 0


class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        path = os.path.join(outdir, "%04d.eml" % count)
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False)


async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SMTP(Handler(), hostname="localhost", tls_context=tls, require_starttls=True,
                     authenticator=authenticate, auth_required=True, auth_require_tls=True),
        host="127.0.0.1", port=0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()


asyncio.run(main())
