"""Outbound mail: compose from templates, decide whether to answer, queue and send."""
