"""The in-process desk runs the same pipeline as the daemon."""

from tests.desk import Desk
from tests.helpers import mail


def test_desk_opens_a_ticket(tmp_path):
    desk = Desk(tmp_path)
    result = desk.deliver(mail("mario@acme.it", "Printer"))
    assert result.outcome == "created"
    [ticket] = desk.tickets()
    assert ticket.number == 10000 and ticket.company_id is not None
    assert [m["Subject"] for m in desk.outbox("mario@acme.it")] == [
        "[#10000] Ticket aperto: Printer"]
