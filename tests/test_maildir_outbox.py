"""The Maildir transport delivers a batch at once: every file of it reaches ``new/``
whole, none is left in ``tmp/``, and a file that cannot be written fails its own row
only (retried later), not the rest of the batch; a batch holds a bounded number of
bytes."""

from __future__ import annotations

from mailgate.outbound import send
from tests.desk import Desk
from tests.helpers import mail


def outbox_rows(desk: Desk) -> list[tuple]:
    return desk.home.query("SELECT id, state, attempts, last_error FROM outbox ORDER BY id")


def test_a_batch_lands_in_new_whole_and_leaves_tmp_empty(tmp_path):
    desk = Desk(tmp_path)
    for n in range(4):
        desk.deliver(mail(f"user{n}@acme.it", f"Request {n}"))
    cfg = desk.svc.config.outbound
    assert send.drain(desk.svc.engine, send.make_transport(cfg), cfg, desk.clock()) == 8
    maildir = desk.home.root / "var" / "outbox"
    assert list((maildir / "tmp").iterdir()) == []
    delivered = desk.home.outbox_mails()
    assert len(delivered) == 8
    assert sorted(m["To"].addresses[0].addr_spec for m in delivered if "Request" in m["Subject"]
                  and "acme.it" in str(m["To"])) == [f"user{n}@acme.it" for n in range(4)]
    assert all(m.get_body(("plain",)).get_content().strip() for m in delivered)
    assert {state for _, state, _, _ in outbox_rows(desk)} == {"sent"}


def test_a_file_that_cannot_be_written_fails_its_row_only(tmp_path):
    desk = Desk(tmp_path)
    desk.deliver(mail("mario@acme.it", "Printer"))
    cfg = desk.svc.config.outbound
    transport = send.make_transport(cfg)
    first_id = outbox_rows(desk)[0][0]
    # A folder where the first mail's file goes in tmp/: its open fails (EISDIR).
    stamp = int(desk.clock().timestamp())  # the row's created_at
    blocker = desk.home.root / "var" / "outbox" / "tmp" / f"{stamp}.mg{first_id}.{transport.host}"
    blocker.mkdir(parents=True)
    send.drain(desk.svc.engine, transport, cfg, desk.clock())
    (first, state, attempts, error), second = outbox_rows(desk)
    assert (state, attempts) == ("queued", 1) and "IsADirectoryError" in error
    assert second[1:3] == ("sent", 1)
    assert len(desk.home.outbox_mails()) == 1

    blocker.rmdir()
    desk.clock.advance(minutes=1)  # past the first retry's backoff (30 s)
    send.drain(desk.svc.engine, transport, cfg, desk.clock())
    assert [row[1:3] for row in outbox_rows(desk)] == [("sent", 2), ("sent", 1)]
    assert len(desk.home.outbox_mails()) == 2
    assert list((desk.home.root / "var" / "outbox" / "tmp").iterdir()) == []


class CountingTransport(send.MaildirTransport):
    """The Maildir transport, noting the bytes and rows of each batch it completes."""

    def __init__(self, root):
        super().__init__(root)
        self.batches: list[tuple[int, int]] = []
        self.batch = (0, 0)

    def send(self, row) -> None:
        super().send(row)
        self.batch = (self.batch[0] + len(row.message), self.batch[1] + 1)

    def finish(self):
        self.batches.append(self.batch)
        self.batch = (0, 0)
        return super().finish()


def test_a_batch_holds_a_bounded_number_of_bytes_in_memory(tmp_path, monkeypatch):
    # A sales forward carries the whole message it forwards: a queue of large mails is
    # claimed a few at a time, and every one of them still goes, once.
    desk = Desk(tmp_path)
    for n in range(3):
        desk.deliver(mail(f"user{n}@acme.it", f"Request {n}", "x" * 20_000))
    sizes = [size for (size,) in desk.home.query("SELECT length(message) FROM outbox")]
    limit = max(sizes) + 10
    monkeypatch.setattr(send, "SEND_BYTES", limit)
    cfg = desk.svc.config.outbound
    transport = CountingTransport(cfg.maildir)
    assert send.drain(desk.svc.engine, transport, cfg, desk.clock()) == 6
    assert len(transport.batches) > 1
    assert all(size <= limit for size, _ in transport.batches)
    assert sum(rows for _, rows in transport.batches) == 6
    assert len(desk.home.outbox_mails()) == 6
    assert {state for _, state, _, _ in outbox_rows(desk)} == {"sent"}
