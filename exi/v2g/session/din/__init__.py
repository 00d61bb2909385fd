"""DIN SPEC 70121 sessions (DC, EIM): ``tables.py`` (both transition tables),
``secc.py`` (:class:`~.secc.DINSECC`), ``evcc.py`` (:class:`~.evcc.DINEVCC`), run by the
cores once SupportedAppProtocol has chosen DIN (see :mod:`exi.v2g.session.protocols`).
What DIN shares with ISO 15118-2 is in :mod:`exi.v2g.session.common`."""
