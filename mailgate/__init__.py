"""mailgate: a help-desk mail gateway that turns mail into tickets."""
