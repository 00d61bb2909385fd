"""What the hardware supplies to a session: the EV and EVSE controller interfaces, and
simulated defaults (a battery and a power-electronics model).

The session cores call these synchronously with the current time; nothing here reads a
clock either.  A real integration subclasses :class:`EVController` / :class:`EVSEController`
and answers from its battery management / power modules / meter / authorization backend.
Answers that take time (authorization, isolation test) are polled: return ``None``
(still ongoing) and the core answers ``EVSEProcessing=Ongoing``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["DCLimits", "ACLimits", "SchedulePeriod", "MeterReading", "EVController",
           "EVSEController", "SimulatedEV", "SimulatedEVSE"]


@dataclass(frozen=True)
class DCLimits:
    max_voltage: float
    max_current: float
    max_power: float
    min_voltage: float = 0.0
    min_current: float = 0.0


@dataclass(frozen=True)
class ACLimits:
    nominal_voltage: float       # EVSE: nominal voltage; EV: max voltage
    max_current: float
    min_current: float = 0.0


@dataclass(frozen=True)
class SchedulePeriod:
    start: int                   # s from now
    duration: Optional[int]      # s; the last period of a schedule has one
    max_power: float             # W


@dataclass(frozen=True)
class MeterReading:
    meter_id: str
    energy_wh: int
    status: int = 0
    timestamp: Optional[int] = None   # Unix time, when the meter knows it
    discharged_wh: Optional[int] = None   # -20 BPT: energy the EVSE took from the EV


# ---------------------------------------------------------------------------------------
# interfaces

class EVController(abc.ABC):
    """The vehicle side: battery management, charge port, user settings."""

    evcc_id: bytes = bytes.fromhex("0A1B2C3D4E5F")     # MAC address of the EVCC's PLC modem

    @abc.abstractmethod
    def dc_limits(self) -> DCLimits: ...

    @abc.abstractmethod
    def ac_limits(self) -> ACLimits: ...

    @abc.abstractmethod
    def soc(self) -> int:
        """State of charge, percent."""

    @abc.abstractmethod
    def battery_voltage(self) -> float:
        """Present battery voltage: PreCharge targets it."""

    @abc.abstractmethod
    def target_current(self) -> float:
        """DC current the battery management asks for now."""

    @abc.abstractmethod
    def update(self, now: float, voltage: float, current: float) -> None:
        """What the charger delivers now (V, A; 0 when off)."""

    @abc.abstractmethod
    def charging_complete(self, now: float) -> bool: ...

    def energy_capacity(self) -> float:
        return 60000.0

    def energy_request(self) -> float:
        return self.energy_capacity() * (100 - self.soc()) / 100

    def bulk_soc(self) -> int:
        return 80

    def full_soc(self) -> int:
        return 100

    def departure_time(self) -> Optional[int]:
        return None

    def remaining_time_to_full(self) -> Optional[float]:
        return None

    def ready(self) -> bool:
        return True

    def precharge_complete(self, now: float, evse_voltage: float) -> Optional[bool]:
        """Whether PreCharge is done, judged by the EV (its own inlet measurement);
        None: the EVCC compares ``evse_voltage`` with :meth:`battery_voltage` using
        ``EVCCConfig.precharge_tolerance``."""
        return None

    def stop_requested(self, now: float) -> bool:
        """The driver or the car wants to end the session before charging is complete
        (unplug button, an error on the car)."""
        return False

    def renegotiation_requested(self, now: float) -> bool:
        """-2: the EV wants a new schedule (PowerDelivery Renegotiate) now."""
        return False

    def discharge_limits(self) -> tuple[float, float]:
        """ISO 15118-20 DC_BPT: (max discharge power W, max discharge current A) now;
        (0, 0) when the battery may not give energy back."""
        lim = self.dc_limits()
        return lim.max_power, lim.max_current

    def ac_discharge_power(self) -> float:
        """ISO 15118-20 AC_BPT: max discharge power now, W, all phases (0: none)."""
        lim = self.ac_limits()
        return lim.nominal_voltage * lim.max_current * 3


class EVSEController(abc.ABC):
    """The charger side: power modules, isolation monitor, meter, authorization."""

    # ISO 15118-20 BPT: the power stage can also sink power (a negative DC current or AC
    # power in set_output); only then does an SECC steer a session into discharge.
    bidirectional: bool = False

    @abc.abstractmethod
    def evse_id(self) -> str:
        """EVSEID, ISO 15118-2 form (``DE*ABC*E123*1``); DIN sends it as hex bytes."""

    @abc.abstractmethod
    def authorize(self, now: float) -> Optional[bool]:
        """EIM: True when authorized, False when refused, None while pending."""

    @abc.abstractmethod
    def dc_limits(self) -> DCLimits: ...

    @abc.abstractmethod
    def ac_limits(self) -> ACLimits: ...

    @abc.abstractmethod
    def schedule(self) -> list[SchedulePeriod]:
        """The PMax schedule offered as SAScheduleTuple 1."""

    @abc.abstractmethod
    def isolation_check(self, now: float) -> Optional[str]:
        """CableCheck: None while the test runs, then "Valid"/"Warning"/"Fault"."""

    @abc.abstractmethod
    def set_output(self, now: float, voltage: float, current: float, on: bool,
                   ac: bool = False) -> None:
        """Drive the power modules: DC voltage/current targets; with ``ac`` the grid
        voltage is switched through (``on`` = contactors) and ``current`` is the limit."""

    @abc.abstractmethod
    def present_voltage(self, now: float) -> float: ...

    @abc.abstractmethod
    def present_current(self, now: float) -> float: ...

    @abc.abstractmethod
    def meter(self, now: float) -> MeterReading: ...

    def charge_parameters_ready(self, now: float) -> bool:
        """False keeps ChargeParameterDiscovery Ongoing (e.g. waiting for a backend)."""
        return True

    def notification(self, now: float) -> str:
        """EVSENotification: "None", "StopCharging" or "ReNegotiation"; ISO 15118-20
        sessions also take its own names ("Pause", "ExitStandby", "Terminate",
        "ScheduleRenegotiation", "ServiceRenegotiation", "MeteringConfirmation")."""
        return "None"

    def metering_confirmed(self, now: float, meter_id: str, charged_wh: Optional[int],
                           discharged_wh: Optional[int]) -> None:
        """ISO 15118-20: the EV confirmed this meter reading (MeteringConfirmationReq)."""

    def status_code(self, now: float) -> str:
        return "EVSE_Ready"

    def discharge_limits(self) -> tuple[float, float]:
        """ISO 15118-20 DC_BPT: (max discharge power W, max discharge current A)."""
        lim = self.dc_limits()
        return lim.max_power, lim.max_current

    def session_ended(self, now: float) -> None:
        """Called once when the session ends (open contactors, release the connector)."""
        self.set_output(now, 0.0, 0.0, False)


# ---------------------------------------------------------------------------------------
# simulated defaults

@dataclass
class SimulatedEV(EVController):
    """A battery with a linear open-circuit voltage, a CC phase and a CV-like taper.

    ``stop_after`` ends charging after that many seconds of current flow regardless of
    SoC (the tests use it to keep sessions short).  ISO 15118-20 BPT: the battery also
    discharges (negative current or AC power), down to ``min_soc``, where its discharge
    limits drop to 0."""
    capacity_wh: float = 60000.0
    soc_pct: float = 30.0
    target_soc: float = 90.0
    v_empty: float = 320.0
    v_full: float = 400.0
    max_current: float = 125.0
    max_power: float = 50000.0
    max_voltage: float = 420.0
    ac_max_current: float = 32.0
    stop_after: Optional[float] = None
    evcc_id: bytes = bytes.fromhex("0A1B2C3D4E5F")
    min_soc: float = 20.0
    _last: Optional[float] = None
    _charging_time: float = 0.0
    energy_wh: float = 0.0

    def dc_limits(self) -> DCLimits:
        return DCLimits(self.max_voltage, self.max_current, self.max_power)

    def ac_limits(self) -> ACLimits:
        return ACLimits(self.max_voltage, self.ac_max_current, 6.0)

    def soc(self) -> int:
        return int(self.soc_pct)

    def discharge_limits(self) -> tuple[float, float]:
        return (0.0, 0.0) if self.soc_pct <= self.min_soc else (self.max_power, self.max_current)

    def ac_discharge_power(self) -> float:
        return 0.0 if self.soc_pct <= self.min_soc else self.max_voltage * self.ac_max_current * 3

    def battery_voltage(self) -> float:
        return self.v_empty + (self.v_full - self.v_empty) * self.soc_pct / 100

    def target_current(self) -> float:
        i = min(self.max_current, self.max_power / self.battery_voltage())
        if self.soc_pct > 80:            # taper above bulk SoC
            i *= max(0.1, (100 - self.soc_pct) / 20)
        return round(i, 1)

    def energy_capacity(self) -> float:
        return self.capacity_wh

    def update(self, now: float, voltage: float, current: float) -> None:
        if self._last is not None and now > self._last:
            dt = now - self._last
            wh = voltage * current * dt / 3600
            self.energy_wh += wh
            self.soc_pct = max(0.0, min(100.0, self.soc_pct + 100 * wh / self.capacity_wh))
            if current > 0:
                self._charging_time += dt
        self._last = now

    def charging_complete(self, now: float) -> bool:
        if self.stop_after is not None and self._charging_time >= self.stop_after:
            return True
        return self.soc_pct >= self.target_soc

    def remaining_time_to_full(self) -> Optional[float]:
        p = self.battery_voltage() * self.target_current()
        return 0.0 if p <= 0 else self.capacity_wh * (100 - self.soc_pct) / 100 / p * 3600


@dataclass
class SimulatedEVSE(EVSEController):
    """Power modules that slew their output voltage at ``slew`` V/s towards the target
    and regulate the current to the EV's target within the limits; an isolation
    monitor that needs ``isolation_polls`` CableCheck requests; EIM authorization that
    is pending for ``auth_polls`` requests; a meter integrating V*I.

    ``notify_at``: {elapsed charging seconds: "StopCharging"|"ReNegotiation"} to
    exercise SECC-initiated stops/renegotiation (-20: any EVSENotification name, see
    :meth:`EVSEController.notification`); ``confirmed_readings`` lists the meter
    readings the EV confirmed (-20 MeteringConfirmation)."""
    evseid: str = "DE*EXI*E15118*1"
    max_voltage: float = 500.0
    min_voltage: float = 150.0
    max_current: float = 200.0
    min_current: float = 0.0
    max_power: float = 100000.0
    ac_nominal_voltage: float = 230.0
    ac_max_current: float = 32.0
    slew: float = 400.0
    auth_polls: int = 1
    cpd_polls: int = 0
    isolation_polls: int = 2
    authorized: bool = True
    notify_at: dict = field(default_factory=dict)
    meter_id: str = "EXI-METER-1"
    # A bidirectional (ISO 15118-20 BPT) power stage: negative DC current (AC: negative
    # current per phase) sinks power from the battery (discharge), up to max_current /
    # ac_max_current / max_power as when charging; the meter counts it apart.
    bidirectional: bool = False
    _v: float = 0.0
    _v_target: float = 0.0
    _i_target: float = 0.0
    _on: bool = False
    _ac: bool = False
    _last: Optional[float] = None
    _energy_wh: float = 0.0
    _discharged_wh: float = 0.0
    _charging_since: Optional[float] = None
    _auth_seen: int = 0
    _cpd_seen: int = 0
    _iso_seen: int = 0
    _notified: set = field(default_factory=set)
    _dc_limits: Optional[tuple] = field(default=None, repr=False, compare=False)   # (key, DCLimits)
    _ac_limits: Optional[tuple] = field(default=None, repr=False, compare=False)   # (key, ACLimits)
    confirmed_readings: list = field(default_factory=list)

    def evse_id(self) -> str:
        return self.evseid

    def authorize(self, now: float) -> Optional[bool]:
        self._auth_seen += 1
        if self._auth_seen <= self.auth_polls:
            return None
        return self.authorized

    def charge_parameters_ready(self, now: float) -> bool:
        self._cpd_seen += 1
        return self._cpd_seen > self.cpd_polls

    def dc_limits(self) -> DCLimits:
        key = (self.max_voltage, self.max_current, self.max_power, self.min_voltage, self.min_current)
        if self._dc_limits is None or self._dc_limits[0] != key:   # asked every loop message
            self._dc_limits = (key, DCLimits(*key))
        return self._dc_limits[1]

    def ac_limits(self) -> ACLimits:
        key = (self.ac_nominal_voltage, self.ac_max_current)
        if self._ac_limits is None or self._ac_limits[0] != key:   # asked every loop message
            self._ac_limits = (key, ACLimits(*key))
        return self._ac_limits[1]

    def schedule(self) -> list[SchedulePeriod]:
        return [SchedulePeriod(0, 86400, self.max_power)]

    def isolation_check(self, now: float) -> Optional[str]:
        self._iso_seen += 1
        self._advance(now)
        # The test voltage is applied while the monitor measures.
        self._v_target = min(self.max_voltage, 500.0)
        if self._iso_seen <= self.isolation_polls:
            return None
        self._v_target = 0.0
        return "Valid"

    def _advance(self, now: float) -> None:
        if self._last is not None and now > self._last:
            dt = now - self._last
            step = self.slew * dt
            self._v = self._v_target if abs(self._v_target - self._v) <= step else \
                self._v + step * (1 if self._v_target > self._v else -1)
            phases = 3 if self._ac else 1
            wh = phases * self._v * self.present_current(now) * dt / 3600
            if wh >= 0:
                self._energy_wh += wh
            else:                       # BPT discharge: the meter counts it apart
                self._discharged_wh -= wh
        self._last = now

    def set_output(self, now: float, voltage: float, current: float, on: bool,
                   ac: bool = False) -> None:
        self._advance(now)
        self._ac = ac
        if ac:      # grid voltage: no slewing; three phases deliver 3 * V * I
            self._v = self._v_target = voltage if on else 0.0
            self._i_target = min(max(current, -self.ac_max_current if self.bidirectional else 0.0),
                                 self.ac_max_current)
            if on and not self._on:
                self._charging_since = now
            self._on = on
            return
        self._v_target = min(max(voltage, 0.0), self.max_voltage)
        self._i_target = min(max(current, -self.max_current if self.bidirectional else 0.0), self.max_current)
        if on and not self._on:
            self._charging_since = now
        self._on = on

    def present_voltage(self, now: float) -> float:
        self._advance(now)
        return self._v

    def present_current(self, now: float) -> float:
        if not self._on:
            return 0.0
        p_lim = self.max_power / self._v if self._v > 1 else self.max_current
        return round(max(min(self._i_target, self.max_current, p_lim), -min(self.max_current, p_lim)), 1)

    def meter(self, now: float) -> MeterReading:
        self._advance(now)
        return MeterReading(self.meter_id, int(self._energy_wh),
                            discharged_wh=int(self._discharged_wh) if self.bidirectional else None)

    def metering_confirmed(self, now: float, meter_id: str, charged_wh: Optional[int],
                           discharged_wh: Optional[int]) -> None:
        self.confirmed_readings.append((meter_id, charged_wh, discharged_wh))

    def notification(self, now: float) -> str:
        if self._charging_since is None or not self._on:
            return "None"
        elapsed = now - self._charging_since
        for at, what in sorted(self.notify_at.items()):
            if elapsed >= at and at not in self._notified:
                self._notified.add(at)
                return what
        return "None"
