"""ISO 15118-2 sessions (AC and DC, EIM): ``tables.py`` (both transition tables),
``secc.py`` (:class:`~.secc.ISO2SECC`), ``evcc.py`` (:class:`~.evcc.ISO2EVCC`), run by the
cores once SupportedAppProtocol has chosen -2 (see :mod:`exi.v2g.session.protocols`).
What -2 shares with DIN SPEC 70121 is in :mod:`exi.v2g.session.common`."""
