"""A bare aiosmtpd sink: the same SMTP server mailgate's door is built on, with a
handler that acknowledges every message and keeps nothing.  Its rate is the ceiling a
Python SMTP door can reach on this machine; ``intake.py`` compares mailgate with it.

``python bench/sink.py PORT`` listens on 127.0.0.1:PORT until SIGTERM and prints the
number of messages it acknowledged when it stops.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    """Acknowledge every message after DATA, as a door with nothing to store would."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        """Count the message and answer 250."""
        self.count += 1
        return "250 2.0.0 Ok: discarded"


async def main(port: int) -> None:
    """Serve on ``port`` until SIGTERM with the options mailgate's door uses."""
    handler, loop = Sink(), asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def factory() -> SMTP:
        """One SMTP session per connection."""
        # A fixed hostname, as mailgate does: aiosmtpd's default looks up the FQDN.
        return SMTP(handler, hostname="sink.example", data_size_limit=67108864,
                    enable_SMTPUTF8=True, decode_data=False, ident="sink")

    server = await loop.create_server(factory, "127.0.0.1", port)
    await stop.wait()
    server.close()
    print(handler.count, flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
