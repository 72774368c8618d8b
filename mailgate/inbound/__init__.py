"""Inbound doors: thin adapters from a mail protocol to the spool."""
